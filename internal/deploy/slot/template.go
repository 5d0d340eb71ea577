package slot

import (
	"errors"
	"fmt"
	"strings"
)

// ErrTemplate is returned (wrapped) for a malformed or unknown {{…}}
// placeholder in a unit template.
var ErrTemplate = errors.New("bad template")

// ErrQuoting is returned (wrapped) when a command line cannot be split.
var ErrQuoting = errors.New("bad command line quoting")

// Vars are the values a unit template may use. Only these placeholders
// exist: {{slot_dir}}, {{port}}, {{slot}}, {{version}}, {{app}}.
type Vars struct {
	App     string
	Slot    Name
	Version string
	SlotDir string
	Port    int
}

func (v Vars) lookup(name string) (string, bool) {
	switch name {
	case "slot_dir":
		return v.SlotDir, true
	case "port":
		return fmt.Sprint(v.Port), true
	case "slot":
		return string(v.Slot), true
	case "version":
		return v.Version, true
	case "app":
		return v.App, true
	}
	return "", false
}

// Render replaces every {{name}} in s (spaces inside the braces are
// allowed) with its value. An unknown name or an unterminated "{{" is an
// error: a typo in a spec must fail the assignment, not start a process
// with a literal "{{prot}}" in its arguments.
func Render(s string, v Vars) (string, error) {
	var b strings.Builder
	rest := s
	for {
		i := strings.Index(rest, "{{")
		if i < 0 {
			b.WriteString(rest)
			return b.String(), nil
		}
		b.WriteString(rest[:i])
		j := strings.Index(rest[i+2:], "}}")
		if j < 0 {
			return "", fmt.Errorf("%w: unterminated {{ in %q", ErrTemplate, s)
		}
		name := strings.TrimSpace(rest[i+2 : i+2+j])
		val, ok := v.lookup(name)
		if !ok {
			return "", fmt.Errorf("%w: unknown placeholder {{%s}} in %q (known: slot_dir, port, slot, version, app)", ErrTemplate, name, s)
		}
		b.WriteString(val)
		rest = rest[i+2+j+2:]
	}
}

// SplitCommand splits a command line into arguments the way a POSIX shell
// would tokenise it, without any expansion: blanks separate arguments,
// single quotes keep everything literally, double quotes keep everything
// but allow \" \\ \$ \` escapes, and a backslash outside quotes escapes the
// next character. No globbing, variables, pipes or redirections: the
// result is exec'd directly.
func SplitCommand(s string) ([]string, error) {
	var (
		args    []string
		cur     strings.Builder
		inArg   bool
		escaped bool
		quote   rune // 0, '\'' or '"'
	)
	for _, r := range s {
		switch {
		case escaped:
			if quote == '"' && !strings.ContainsRune("\"\\$`\n", r) {
				cur.WriteRune('\\')
			}
			if !(r == '\n' && quote != '\'') {
				cur.WriteRune(r)
			}
			escaped = false
		case quote == '\'':
			if r == '\'' {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case quote == '"':
			switch r {
			case '"':
				quote = 0
			case '\\':
				escaped = true
			default:
				cur.WriteRune(r)
			}
		case r == '\\':
			escaped, inArg = true, true
		case r == '\'' || r == '"':
			quote, inArg = r, true
		case r == ' ' || r == '\t' || r == '\n' || r == '\r':
			if inArg {
				args = append(args, cur.String())
				cur.Reset()
				inArg = false
			}
		default:
			cur.WriteRune(r)
			inArg = true
		}
	}
	if escaped {
		return nil, fmt.Errorf("%w: trailing backslash in %q", ErrQuoting, s)
	}
	if quote != 0 {
		return nil, fmt.Errorf("%w: unterminated %c quote in %q", ErrQuoting, quote, s)
	}
	if inArg {
		args = append(args, cur.String())
	}
	return args, nil
}

// RenderCommand splits a command template first and renders each argument
// afterwards, so a value containing blanks or quotes (a slot dir with a
// space, say) stays one argument.
func RenderCommand(tmpl string, v Vars) ([]string, error) {
	args, err := SplitCommand(tmpl)
	if err != nil {
		return nil, err
	}
	if len(args) == 0 {
		return nil, fmt.Errorf("%w: empty command", ErrQuoting)
	}
	for i, a := range args {
		if args[i], err = Render(a, v); err != nil {
			return nil, err
		}
	}
	if args[0] == "" {
		return nil, fmt.Errorf("%w: empty executable in %q", ErrQuoting, tmpl)
	}
	if strings.ContainsRune(ExecPrefixes, rune(args[0][0])) {
		return nil, fmt.Errorf("%w: executable %q starts with %q, which systemd reads as a command prefix (\"+\" and \"!\" run it as root, outside the sandbox)",
			ErrUnsafeCommand, args[0], args[0][:1])
	}
	return args, nil
}

// ExecPrefixes are the characters systemd reads as command prefixes at
// the start of an Exec*= line's first word, after removing quotes (so
// quoting does not neutralise them): "-" "@" ":" "+" "!" "|". The same
// set as spec.ExecPrefixChars, which spec validation and the agent's
// policy check; RenderCommand checks the expanded executable again, since
// a placeholder ({{version}}) may put one there.
const ExecPrefixes = "-@:+!|"

// ErrUnsafeCommand is returned (wrapped) for a command line systemd would
// run differently from what it says (an executable starting with a
// command prefix).
var ErrUnsafeCommand = errors.New("unsafe command line")
