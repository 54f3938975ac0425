package envoy

import "testing"

func TestParseVersion(t *testing.T) {
	cases := []struct {
		in     string
		want   Version
		wantOK bool
	}{
		{"0123abcd/1.36.6/Clean/RELEASE/BoringSSL", Version{1, 36, 6}, true},
		{"b050513e840aa939a01f89b07c162f00ab3150eb/1.9.0-dev/Modified/DEBUG", Version{1, 9, 0}, true},
		{"1.28.0", Version{1, 28, 0}, true},
		{"custom-build", Version{}, false},
		{"", Version{}, false},
		{"abc/1.x.0/Clean", Version{}, false},
	}
	for _, c := range cases {
		got, ok := ParseVersion(c.in)
		if got != c.want || ok != c.wantOK {
			t.Errorf("ParseVersion(%q) got %v %v, want %v %v", c.in, got, ok, c.want, c.wantOK)
		}
	}
}

func TestFeaturesOf(t *testing.T) {
	cases := []struct {
		v    Version
		want Features
	}{
		{Version{1, 9, 0}, Features{}},
		{Version{1, 10, 0}, Features{MethodNotAllowed: true}},
		{Version{1, 12, 3}, Features{DrainListeners: true, MethodNotAllowed: true, Ready: true}},
		{Version{1, 16, 0}, Features{DrainListeners: true, GracefulDrain: true, MethodNotAllowed: true, Ready: true}},
		{Version{1, 28, 0}, Features{DrainListeners: true, GracefulDrain: true, SkipExit: true, MethodNotAllowed: true, Ready: true}},
		{Version{2, 0, 0}, Features{DrainListeners: true, GracefulDrain: true, SkipExit: true, MethodNotAllowed: true, Ready: true}},
	}
	for _, c := range cases {
		if got := FeaturesOf(c.v); got != c.want {
			t.Errorf("FeaturesOf(%v) got %+v, want %+v", c.v, got, c.want)
		}
	}
}
