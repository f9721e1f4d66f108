package falkor

import (
	"encoding/binary"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestKeySlot(t *testing.T) {
	tests := []struct {
		key  string
		want int
	}{
		{"123456789", 0x31C3}, // the CRC16/XMODEM check value
		{"foo", 12182},
		{"bar", 5061},
		{"{user1000}.following", keySlot("user1000")},
		{"{user1000}.followers", keySlot("user1000")},
		{"foo{}{bar}", keySlot("foo{}{bar}")}, // an empty tag: the whole key
		{"foo{{bar}}zap", keySlot("{bar")},
		{"foo{bar}{zap}", keySlot("bar")},
		{"tgbackup:label:{acme_users}", keySlot("acme_users")},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, keySlot(tt.key), tt.key)
	}
	require.NotEqual(t, keySlot("foo{}{bar}"), keySlot("bar"))
}

// graphdataID is the module type id of FalkorDB graphs with encoding
// version encver.
func graphdataID(encver int) uint64 {
	const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	var id uint64
	for _, c := range "graphdata" {
		id = id<<6 | uint64(strings.IndexRune(chars, c))
	}
	return id<<10 | uint64(encver)
}

// rdbLen encodes an RDB length.
func rdbLen(n int) []byte {
	switch {
	case n < 64:
		return []byte{byte(n)}
	case n < 1<<14:
		return []byte{0x40 | byte(n>>8), byte(n)}
	}
	return binary.BigEndian.AppendUint32([]byte{0x80}, uint32(n))
}

// fakePayload builds a graph payload whose first string holds the graph's
// name followed by body, stored plainly or as LZF literal runs.
func fakePayload(name string, body []byte, lzf bool) []byte {
	data := binary.LittleEndian.AppendUint64(nil, uint64(len(name)+1))
	data = append(append(append(data, name...), 0), body...)
	p := binary.BigEndian.AppendUint64([]byte{rdbTypeModule2, 0x81}, graphdataID(18))
	p = append(p, rdbModuleOpString)
	if lzf {
		var comp []byte
		for rest := data; len(rest) > 0; {
			n := min(len(rest), 32)
			comp = append(append(comp, byte(n-1)), rest[:n]...)
			rest = rest[n:]
		}
		p = append(p, 0xc0|rdbEncLZF)
		p = append(p, rdbLen(len(comp))...)
		p = append(p, rdbLen(len(data))...)
		p = append(p, comp...)
	} else {
		p = append(append(p, rdbLen(len(data))...), data...)
	}
	return append(p, 0, 12, 0, 1, 2, 3, 4, 5, 6, 7) // EOF, RDB version, CRC
}

func TestPayloadGraph(t *testing.T) {
	long := strings.Repeat("n", 300)
	for _, lzf := range []bool{false, true} {
		for _, name := range []string{"g", "acme_users", long} {
			p := fakePayload(name, []byte("rest of the graph"), lzf)
			got, err := payloadGraph(p, len(name))
			require.NoError(t, err)
			require.Equal(t, name, got)
			_, err = payloadGraph(p, len(name)-1)
			require.ErrorContains(t, err, "longer than")
			// Cut short anywhere before the name's end: an error, no panic.
			p = fakePayload(name, nil, lzf)
			trailer := p[len(p)-rdbTrailer:]
			for cut := 1; cut <= len(p); cut++ {
				q := p[:max(len(p)-rdbTrailer-cut, 0)]
				_, err := payloadGraph(append(slices.Clone(q), trailer...), len(name))
				require.Error(t, err, "cut %d", cut)
				_, err = payloadGraph(p[:len(p)-cut], len(name))
				require.Error(t, err, "cut %d without trailer", cut)
			}
		}
	}
	// A back reference: "aaaa" as 'a' + a 3-byte copy of the previous byte.
	out, err := lzfPrefix([]byte{0, 'a', 1 << 5, 0}, 10)
	require.NoError(t, err)
	require.Equal(t, "aaaa", string(out))
	_, err = lzfPrefix([]byte{0, 'a', 1 << 5, 1}, 10)
	require.Error(t, err, "a reference before the start")
	_, _, err = payloadModule([]byte("\x07\x81\x00\x00\x00\x00\x00\x00\x00\x00" + strings.Repeat("\x00", 10)))
	require.Error(t, err, "another module type")
}

func FuzzPayloadGraph(f *testing.F) {
	f.Add(fakePayload("g", nil, false), 8)
	f.Add(fakePayload("acme_users", []byte("body"), true), 10)
	f.Add([]byte{7, 0x81}, 1)
	f.Fuzz(func(t *testing.T, p []byte, limit int) {
		limit = min(max(limit, 0), 1024)
		name, err := payloadGraph(p, limit)
		if err == nil && len(name) > limit {
			t.Fatalf("name of %d bytes, limit %d", len(name), limit)
		}
	})
}
