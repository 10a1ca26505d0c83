// Package fuzzinput turns the bytes of a go test -fuzz input into choices, for fuzz targets that
// build structured inputs from raw bytes.
package fuzzinput

// Reader hands out the bytes of a fuzz input, and zeros when they run out.
type Reader struct{ b []byte }

// New returns a Reader of b.
func New(b []byte) *Reader { return &Reader{b: b} }

// Byte returns the next byte, or 0 when there are none left.
func (r *Reader) Byte() byte {
	if len(r.b) == 0 {
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

// Bytes returns the next n bytes, zeros for those past the end.
func (r *Reader) Bytes(n int) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = r.Byte()
	}
	return out
}

// Choose returns a number below n taken from the next byte; n must be positive.
func (r *Reader) Choose(n int) int { return int(r.Byte()) % n }

// Left reports how many bytes are left.
func (r *Reader) Left() int { return len(r.b) }
