package main

import (
	"os"
	"testing"
)

func TestConsoleOutlivesItsReader(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	c := newConsole(w, os.Stderr)
	if _, err := c.Out.Write([]byte("read\n")); err != nil {
		t.Fatalf("Write() with a reader = %v", err)
	}
	select {
	case <-c.Gone():
		t.Fatal("Gone() is closed while the reader is there")
	default:
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if n, err := c.Out.Write([]byte("lost\n")); n != 5 || err != nil {
			t.Errorf("Write() after the reader went away = %d, %v; want 5, nil", n, err)
		}
	}
	select {
	case <-c.Gone():
	default:
		t.Error("Gone() is not closed after a write found the reader gone")
	}
}
