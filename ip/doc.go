// Package ip owns the link- and network-layer wire formats of the stack:
// Ethernet II (with one 802.1Q tag), ARP for IPv4 over Ethernet (RFC 826),
// IPv4 (RFC 791) with its options, ICMPv4 (RFC 792) and UDP (RFC 768).
//
// Each protocol comes in two levels, as a view and as fields:
//
//   - A view (Ethernet, ARP, IPv4, ICMPv4, UDP) is a named []byte over the
//     received frame; it copies nothing and its accessors are named after the
//     RFC's fields. The Parse function of each view (ParseEthernet, ParseARP,
//     ParseIPv4, ParseICMPv4, ParseUDP) is the only way in from the wire: it
//     checks every length and offset the accessors rely on, and once it has
//     returned a view without error, no accessor or method of that view
//     panics or reads outside it. A view converted from raw bytes without its
//     Parse function carries no such promise.
//   - A fields struct (EthernetFields, ARPFields, IPv4Fields, ICMPv4Fields,
//     UDPFields) says what to send; its Encode writes the header into
//     headroom in front of a payload that already sits in the same buffer,
//     so the payload is never copied. Encode computes the checksums; it
//     returns an error, never panics, when the buffer is too short or the
//     fields cannot be encoded.
//
// Parse errors are *ParseError values naming the layer, the field and its
// byte offset; errors.Is sorts them into ErrTruncated, ErrMalformed and
// ErrUnsupported, so a caller can count drops by reason. Checksums are not
// verified by Parse (a device may have verified them already): each view
// with a checksum has ChecksumValid.
//
// The package is sans-I/O: no clocks, no goroutines, no global state beyond
// constants and sentinel errors. Parsing, accessors and encoding allocate
// nothing; only a returned error does.
package ip
