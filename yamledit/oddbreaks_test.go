package yamledit

import "testing"

func TestOddBreaks(t *testing.T) {
	for in, want := range map[string]bool{"a\nb": false, "a\r\nb\r\n": false, "a\rb": true, "a\r\nb\r": true, "a\u2028b": true, "": false, "x\r\ny\rz": true} {
		if got := oddBreaks([]byte(in)); got != want {
			t.Errorf("oddBreaks(%q) got %v, want %v", in, got, want)
		}
	}
}
