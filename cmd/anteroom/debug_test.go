package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

func TestDebugListenerServesTheProfilerOnly(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	stop, err := serveDebug(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/debug/pprof/"); code != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Errorf("/debug/pprof/ = %d %.100q, want the profile index", code, body)
	}
	// Nothing of the public surface is on this listener.
	if code, _ := get("/healthz"); code != http.StatusNotFound {
		t.Errorf("/healthz on the debug listener = %d, want 404", code)
	}
	// A page in a browser on this machine may reach the listener under its
	// own name by DNS rebinding; only IP literals and localhost are served.
	for host, want := range map[string]int{
		"attacker.example:6060": http.StatusMisdirectedRequest, "attacker.example": http.StatusMisdirectedRequest,
		"localhost:6060": http.StatusOK, "LOCALHOST": http.StatusOK, "[::1]:6060": http.StatusOK, addr: http.StatusOK,
	} {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/debug/pprof/", nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("Host %q: %d, want %d", host, resp.StatusCode, want)
		}
	}
	// A taken address is an error at start-up, not a silent absence.
	if _, err := serveDebug(ctx, addr); err == nil {
		t.Error("serveDebug on a taken address succeeded")
	}
}
