//go:build !purego

#include "textflag.h"

// func sumBulk(b []byte) (acc uint64, n int)
//
// Adds the 64-bit little-endian words of the first len(b)&^31 bytes of b and
// returns them as acc, whose value is congruent modulo 0xffff to their sum,
// and n, the number of bytes consumed. Requires AVX2.
//
// Each 64-bit lane keeps two sums: F, the words themselves modulo 2^64, and
// H, their high 32-bit halves, exact. The exact sum of the low halves is then
// L = F - H<<32 (mod 2^64, exact because L < 2^64), and since 2^32 ≡ 1
// (mod 0xffff) the words sum to L + H modulo 0xffff. That is three vector
// ALU operations per 32 bytes (shift, add, add) and no carry handling.
TEXT ·sumBulk(SB), NOSPLIT, $0-40
	MOVQ b_base+0(FP), SI
	MOVQ b_len+8(FP), CX
	ANDQ $~31, CX
	MOVQ CX, n+32(FP)
	VPXOR Y0, Y0, Y0 // F accumulators: Y0..Y3
	VPXOR Y1, Y1, Y1
	VPXOR Y2, Y2, Y2
	VPXOR Y3, Y3, Y3
	VPXOR Y4, Y4, Y4 // H accumulators: Y4..Y7
	VPXOR Y5, Y5, Y5
	VPXOR Y6, Y6, Y6
	VPXOR Y7, Y7, Y7
	CMPQ CX, $128
	JB   tail32

loop128:
	VMOVDQU 0(SI), Y8
	VMOVDQU 32(SI), Y9
	VMOVDQU 64(SI), Y10
	VMOVDQU 96(SI), Y11
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
	JZ    reduce

loop32:
	VMOVDQU 0(SI), Y8
	VPSRLQ  $32, Y8, Y12
	VPADDQ  Y8, Y0, Y0
	VPADDQ  Y12, Y4, Y4
	ADDQ    $32, SI
	SUBQ    $32, CX
	JNZ     loop32

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
	MOVQ         AX, acc+24(FP)
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
