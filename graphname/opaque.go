package graphname

import "crypto/sha256"

// The OpaqueSubject encoding.
const (
	// base32Alphabet is RFC 4648 base32 in lower case. It has neither
	// separator nor '-'.
	base32Alphabet = "abcdefghijklmnopqrstuvwxyz234567"

	// maxDirectSubject is the longest subject encoded directly:
	// ceil(39*8/5) = 63 base32 characters, the longest segment.
	maxDirectSubject = 39

	// hashedMarker starts every hashed segment. Base32 output has no '-', so
	// a hashed segment never equals a direct one.
	hashedMarker = "h-"
)

// encodeSubject writes the segment of a valid subject into buf and returns its
// length: the unpadded lower-case base32 of the subject when it has at most
// 39 bytes, else "h-" and the base32 of its SHA-256 (54 characters).
func encodeSubject(buf *[maxSegment + 1]byte, subject string) int {
	if len(subject) <= maxDirectSubject {
		return encodeBase32(buf[:], subject)
	}
	// Copy into a stack buffer: a []byte(subject) conversion of this size
	// would allocate, and Strip must not.
	var tmp [MaxSubjectLen]byte
	sum := sha256.Sum256(tmp[:copy(tmp[:], subject)])
	n := copy(buf[:], hashedMarker)
	return n + encodeBase32(buf[n:], sum[:])
}

// encodeBase32 writes the unpadded lower-case base32 of src into dst, which
// must hold ceil(8*len(src)/5) bytes, and returns that length.
func encodeBase32[S ~string | ~[]byte](dst []byte, src S) int {
	var acc uint
	var bits uint
	n := 0
	for i := 0; i < len(src); i++ {
		acc = acc<<8 | uint(src[i])
		bits += 8
		for bits >= 5 {
			bits -= 5
			dst[n] = base32Alphabet[(acc>>bits)&31]
			n++
		}
	}
	if bits > 0 {
		dst[n] = base32Alphabet[(acc<<(5-bits))&31]
		n++
	}
	return n
}
