//go:build !linux

package main

import "github.com/tapstack/tapstack/tcp"

func kernelCasesBlocked() string { return "they need Linux" }

func cleanupKernelNS() {}

func runKernel(sp spec, stackName string) (measure, error) {
	return measure{}, &unavailableError{"Linux only"}
}

func runKernelWith(sp spec, stackName string, _ tcp.Config) (measure, error) {
	return runKernel(sp, stackName)
}
