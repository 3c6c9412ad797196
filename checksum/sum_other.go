//go:build !amd64 || purego

package checksum

func sum(b []byte, initial uint16) uint16 { return sumGo(b, initial, false) }

const bulkMin = 0

// sumBulk is never called here: sum passes bulk = false.
func sumBulk([]byte) uint64 { return 0 }
