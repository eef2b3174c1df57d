//go:build !unix

package server

// descriptorLimit is unknown outside unix: the stream bound falls back to
// its fixed default.
func descriptorLimit() uint64 { return 0 }
