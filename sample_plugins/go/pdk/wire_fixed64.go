package pdk

import "math"

// Fixed64 (double) fields, used by the cache service's float messages. They
// live in their own file so wire.go, and with it the line table of every Go
// sample built before they existed, stays byte-for-byte unchanged.

// double encodes a fixed64 field, little-endian; only +0.0 is a default
// (-0.0 is written, as protobuf-go does).
func (e *encoder) double(num int, v float64) {
	if bits := math.Float64bits(v); bits != 0 {
		e.buf = appendTag(e.buf, num, wireFixed64)
		for i := 0; i < 8; i++ {
			e.buf = append(e.buf, byte(bits>>(8*i)))
		}
	}
}

func (d *decoder) readDouble(num, wt int, dst *float64) error {
	if wt != wireFixed64 {
		return wireTypeError(num, wt)
	}
	start := d.pos
	if err := d.fixed(8); err != nil {
		return err
	}
	var bits uint64
	for i := 7; i >= 0; i-- {
		bits = bits<<8 | uint64(d.buf[start+i])
	}
	*dst = math.Float64frombits(bits)
	return nil
}
