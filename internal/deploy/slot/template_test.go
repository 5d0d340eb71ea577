package slot

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestRender(t *testing.T) {
	v := Vars{App: "api", Slot: Green, Version: "2.4.0", SlotDir: "/d/api/green", Port: 8082}
	cases := []struct {
		name, in, want string
		err            error
	}{
		// every placeholder, with and without inner spaces
		{"all", "{{app}} {{ slot }} {{version}} {{slot_dir}} {{port}}", "api green 2.4.0 /d/api/green 8082", nil},
		// nothing to do
		{"plain", "no placeholders", "no placeholders", nil},
		// a typo must fail, not leak through
		{"unknown", "--listen :{{prot}}", "", ErrTemplate},
		{"unterminated", "x {{port", "", ErrTemplate},
		// single braces are left alone
		{"single brace", "{a} }}", "{a} }}", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Render(c.in, v)
			if c.err != nil {
				if !errors.Is(err, c.err) {
					t.Fatalf("err = %v, want %v", err, c.err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("Render(%q) = %q, %v; want %q", c.in, got, err, c.want)
			}
		})
	}
}

func TestSplitCommand(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want []string
		bad  bool
	}{
		{"blanks", "  a  b\tc ", []string{"a", "b", "c"}, false},
		{"single quotes literal", `a 'b c \n $x'`, []string{"a", `b c \n $x`}, false},
		{"double quotes escapes", `a "b \"c\" \\ \x"`, []string{"a", `b "c" \ \x`}, false},
		{"backslash outside", `a\ b c`, []string{"a b", "c"}, false},
		{"empty quoted arg", `a '' b`, []string{"a", "", "b"}, false},
		{"adjacent quotes join", `a"b"'c'd`, []string{"abcd"}, false},
		{"no shell", `a | b > c`, []string{"a", "|", "b", ">", "c"}, false},
		{"unterminated single", `a 'b`, nil, true},
		{"unterminated double", `a "b`, nil, true},
		{"trailing backslash", `a \`, nil, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := SplitCommand(c.in)
			if c.bad {
				if !errors.Is(err, ErrQuoting) {
					t.Fatalf("err = %v, want ErrQuoting", err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, c.want) {
				t.Fatalf("SplitCommand(%q) = %q, %v; want %q", c.in, got, err, c.want)
			}
		})
	}
}

func TestRenderCommandKeepsValuesWhole(t *testing.T) {
	v := Vars{SlotDir: "/data/my apps/blue", Port: 1}
	got, err := RenderCommand("{{slot_dir}}/bin/app --port {{port}}", v)
	want := []string{"/data/my apps/blue/bin/app", "--port", "1"}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q, %v; want %q", got, err, want)
	}
	if _, err := RenderCommand("   ", v); err == nil {
		t.Fatal("empty command accepted")
	}
}

// TestSecurityRenderCommandPrefix (issue 11 item 3): whatever reached the
// agent, the executable RenderCommand returns never starts with a systemd
// command prefix, including one put there by a placeholder (a forged
// order's version) or hidden in quotes the splitter removes.
func TestSecurityRenderCommandPrefix(t *testing.T) {
	v := Vars{App: "api", Slot: Blue, Version: "+x", SlotDir: "/srv/api/blue", Port: 8081}
	for _, tmpl := range []string{
		"+/bin/sh -c id",
		`"+/bin/sh" -c id`,
		`'!!/bin/sh'`,
		`\@/bin/sh sh`,
		`""-/bin/false`,
		"  :/bin/echo",
		"|/bin/sh",
		"{{version}}/bin/sh", // expands to "+x/bin/sh"
	} {
		argv, err := RenderCommand(tmpl, v)
		if !errors.Is(err, ErrUnsafeCommand) || !strings.Contains(err.Error(), "command prefix") {
			t.Errorf("RenderCommand(%q) = %q, %v; want ErrUnsafeCommand", tmpl, argv, err)
		}
	}
	if argv, err := RenderCommand("{{slot_dir}}/bin/api --opt=+1 -v @f", v); err != nil || argv[0] != "/srv/api/blue/bin/api" {
		t.Errorf("plain command: %q, %v", argv, err)
	}
}
