//go:build !linux

package main

func kernelCasesBlocked() string { return "they need Linux" }

func cleanupKernelNS() {}

func runKernel(sp spec, stackName string) (measure, error) {
	return measure{}, &unavailableError{"Linux only"}
}
