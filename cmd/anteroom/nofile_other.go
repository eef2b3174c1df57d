//go:build !unix

package main

// descriptorLimit is unknown outside unix: the stream bound falls back to
// its fixed default.
func descriptorLimit() uint64 { return 0 }
