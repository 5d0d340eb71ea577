package main

import "testing"

func TestPercent(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"0.1", "10%"},        // the bad version's rate
		{"0.01", "1%"},        // the limit
		{"0.100629", "10.1%"}, // three significant digits
		{"0", "0%"},
		{"none", "none"}, // not a number (NaN readings): shown as it is
	} {
		if got := percent(c.in); got != c.want {
			t.Errorf("percent(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestWindowOf(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"2026-12-06T06:55:24.760190812Z..2026-12-06T06:55:28.760190812Z", "4s of traffic, 06:55:24.760 .. 06:55:28.760"},
		{"2026-12-06T06:55:24Z..2026-12-06T06:55:26.5Z", "2.5s of traffic, 06:55:24.000 .. 06:55:26.500"},
		{"garbage", "garbage"}, // no separator
		{"a..b", "a..b"},       // not times
		{"", ""},
	} {
		if got := windowOf(c.in); got != c.want {
			t.Errorf("windowOf(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestEnvBool(t *testing.T) {
	for _, c := range []struct {
		val     string
		want    bool
		wantErr bool
	}{
		{"", false, false}, // unset or empty: off
		{"1", true, false},
		{"0", false, false},
		{"true", true, false},
		{"yes", false, true}, // refused, not silently off
		{"2", false, true},
	} {
		t.Setenv("DEMO_KEEP_TEST", c.val)
		got, err := envBool("DEMO_KEEP_TEST")
		if got != c.want || (err != nil) != c.wantErr {
			t.Errorf("DEMO_KEEP_TEST=%q: got %v, %v; want %v, error %v", c.val, got, err, c.want, c.wantErr)
		}
	}
}
