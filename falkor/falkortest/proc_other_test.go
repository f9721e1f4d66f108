//go:build !unix

package falkortest_test

// processRunning cannot tell on this system.
func processRunning(int) bool { return false }
