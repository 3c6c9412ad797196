//go:build !purego

#include "textflag.h"

// Loading 32 bytes at headmask+32-h keeps the first h bytes of a vector;
// loading them at headmask+32+r keeps its last r bytes.
DATA headmask<>+0(SB)/8, $0xffffffffffffffff
DATA headmask<>+8(SB)/8, $0xffffffffffffffff
DATA headmask<>+16(SB)/8, $0xffffffffffffffff
DATA headmask<>+24(SB)/8, $0xffffffffffffffff
DATA headmask<>+32(SB)/8, $0
DATA headmask<>+40(SB)/8, $0
DATA headmask<>+48(SB)/8, $0
DATA headmask<>+56(SB)/8, $0
DATA headmask<>+64(SB)/8, $0xffffffffffffffff
DATA headmask<>+72(SB)/8, $0xffffffffffffffff
DATA headmask<>+80(SB)/8, $0xffffffffffffffff
DATA headmask<>+88(SB)/8, $0xffffffffffffffff
GLOBL headmask<>(SB), RODATA|NOPTR, $96

// VPSHUFB control rotating each 64-bit lane left by 8 bits.
DATA rot8<>+0(SB)/8, $0x0605040302010007
DATA rot8<>+8(SB)/8, $0x0e0d0c0b0a09080f
DATA rot8<>+16(SB)/8, $0x0605040302010007
DATA rot8<>+24(SB)/8, $0x0e0d0c0b0a09080f
GLOBL rot8<>(SB), RODATA|NOPTR, $32

// func sumBulk(b []byte) uint64
//
// Requires AVX2 and len(b) >= 64. Returns a value below 2^32 congruent modulo
// 0xffff to the sum of b as little-endian 16-bit words (an odd last byte
// padded with zero).
//
// Only aligned 32-byte loads run in the loop, so none splits a cache line:
// the h = -&b[0] & 31 bytes before the first 32-byte boundary come from one
// unaligned load masked to them, and the r bytes after the last boundary from
// one unaligned load of b's last 32 bytes masked to them. The aligned words
// start at offset h; the head and tail vectors, whose words start at offsets
// 0 and len(b)-32, are rotated by a byte per 64-bit lane when that parity
// differs from h's (a multiplication by 2^8 modulo 2^64-1, hence modulo
// 0xffff, which is what moving a byte to the other half of its word does),
// and when h is odd the result is rotated once more to match offset 0.
//
// Each 64-bit lane keeps two sums: F, the words themselves modulo 2^64, and
// H, their high 32-bit halves, exact. The exact sum of the low halves is then
// L = F - H<<32 (mod 2^64, exact because L < 2^64), and since 2^32 ≡ 1
// (mod 0xffff) the words sum to L + H modulo 0xffff. That is three vector
// ALU operations per 32 bytes (shift, add, add) and no carry handling.
TEXT ·sumBulk(SB), NOSPLIT, $0-32
	MOVQ b_base+0(FP), SI
	MOVQ b_len+8(FP), CX
	LEAQ (SI)(CX*1), R12 // end of b
	VPXOR Y0, Y0, Y0 // F accumulators: Y0..Y3
	VPXOR Y1, Y1, Y1
	VPXOR Y2, Y2, Y2
	VPXOR Y3, Y3, Y3
	VPXOR Y4, Y4, Y4 // H accumulators: Y4..Y7
	VPXOR Y5, Y5, Y5
	VPXOR Y6, Y6, Y6
	VPXOR Y7, Y7, Y7

	// Head: h bytes, h in R9.
	MOVQ    SI, R9
	NEGQ    R9
	ANDQ    $31, R9
	LEAQ    headmask<>+32(SB), R8
	SUBQ    R9, R8
	VMOVDQU 0(SI), Y8
	VPAND   0(R8), Y8, Y8
	TESTQ   $1, R9
	JZ      headdone
	VPSHUFB rot8<>(SB), Y8, Y8

headdone:
	VPSRLQ $32, Y8, Y12
	VPADDQ Y8, Y0, Y0
	VPADDQ Y12, Y4, Y4
	ADDQ   R9, SI
	SUBQ   R9, CX
	MOVQ   CX, R11
	ANDQ   $31, R11  // r, the tail's length
	ANDQ   $~31, CX  // aligned bytes
	CMPQ   CX, $128
	JB     tail32

loop128:
	VMOVDQA 0(SI), Y8
	VMOVDQA 32(SI), Y9
	VMOVDQA 64(SI), Y10
	VMOVDQA 96(SI), Y11
	VPSRLQ  $32, Y8, Y12
	VPSRLQ  $32, Y9, Y13
	VPSRLQ  $32, Y10, Y14
	VPSRLQ  $32, Y11, Y15
	VPADDQ  Y8, Y0, Y0
	VPADDQ  Y9, Y1, Y1
	VPADDQ  Y10, Y2, Y2
	VPADDQ  Y11, Y3, Y3
	VPADDQ  Y12, Y4, Y4
	VPADDQ  Y13, Y5, Y5
	VPADDQ  Y14, Y6, Y6
	VPADDQ  Y15, Y7, Y7
	ADDQ    $128, SI
	SUBQ    $128, CX
	CMPQ    CX, $128
	JAE     loop128

tail32:
	TESTQ CX, CX
	JZ    tail

loop32:
	VMOVDQA 0(SI), Y8
	VPSRLQ  $32, Y8, Y12
	VPADDQ  Y8, Y0, Y0
	VPADDQ  Y12, Y4, Y4
	ADDQ    $32, SI
	SUBQ    $32, CX
	JNZ     loop32

tail:
	// Tail: the last r bytes; their vector's words start at offset
	// len(b)-32, of h's parity when r is even.
	TESTQ   R11, R11
	JZ      reduce
	LEAQ    headmask<>+32(SB), R8
	ADDQ    R11, R8
	VMOVDQU -32(R12), Y8
	VPAND   0(R8), Y8, Y8
	TESTQ   $1, R11
	JZ      taildone
	VPSHUFB rot8<>(SB), Y8, Y8

taildone:
	VPSRLQ $32, Y8, Y12
	VPADDQ Y8, Y0, Y0
	VPADDQ Y12, Y4, Y4

reduce:
	VPADDQ       Y1, Y0, Y0
	VPADDQ       Y3, Y2, Y2
	VPADDQ       Y2, Y0, Y0
	VPADDQ       Y5, Y4, Y4
	VPADDQ       Y7, Y6, Y6
	VPADDQ       Y6, Y4, Y4
	VEXTRACTI128 $1, Y0, X1
	VPADDQ       X1, X0, X0
	VPSHUFD      $0x4e, X0, X1
	VPADDQ       X1, X0, X0
	VEXTRACTI128 $1, Y4, X5
	VPADDQ       X5, X4, X4
	VPSHUFD      $0x4e, X4, X5
	VPADDQ       X5, X4, X4
	VMOVQ        X0, AX // F
	VMOVQ        X4, BX // H
	VZEROUPPER
	MOVQ         BX, DX
	SHLQ         $32, DX
	SUBQ         DX, AX // L = F - H<<32
	ADDQ         BX, AX // L + H: both < 2^61 for any slice, no overflow
	// Fold to 32 bits with end-around carry, then undo an odd h.
	MOVQ         AX, DX
	SHRQ         $32, DX
	ADDL         DX, AX // 32-bit operations clear the upper half
	ADCL         $0, AX
	TESTQ        $1, R9
	JZ           done
	ROLL         $8, AX

done:
	MOVQ AX, ret+24(FP)
	RET

// func cpuid(leaf, sub uint32) (a, b, c, d uint32)
TEXT ·cpuid(SB), NOSPLIT, $0-24
	MOVL leaf+0(FP), AX
	MOVL sub+4(FP), CX
	CPUID
	MOVL AX, a+8(FP)
	MOVL BX, b+12(FP)
	MOVL CX, c+16(FP)
	MOVL DX, d+20(FP)
	RET

// func xgetbv0() (lo uint32)
TEXT ·xgetbv0(SB), NOSPLIT, $0-4
	MOVL $0, CX
	XGETBV
	MOVL AX, lo+0(FP)
	RET
