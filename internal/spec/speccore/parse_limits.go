package speccore

import (
	"errors"
	"math/big"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// Limits on what the parsers accept. Specs arrive over the network from
// anyone holding a read token (PlanRelease), and the HCL and JSON parsers
// recurse once per nesting level: 100,000 open parentheses overflow the
// goroutine stack, which kills the whole process (Go cannot recover a
// stack overflow). So every source is checked against these limits by a
// pre-scan that does not recurse, before the parser sees it.
const (
	// MaxSourceBytes bounds one spec or config file. The largest real
	// release spec is a few KiB (a long environment map, a dozen checks);
	// 64 KiB is twenty times that. Parsing and evaluating costs about
	// 1 KB of allocation per byte of the worst inputs (a file of one-byte
	// list elements), so this also bounds one parse to well under 100 MB
	// and a second of CPU.
	MaxSourceBytes = 64 << 10

	// MaxNestingDepth bounds how deeply brackets, braces, parentheses,
	// quoted strings, heredocs, template interpolations and %{if}/%{for}
	// directives nest, counting a run of unary operators ("- - -1") as one
	// level each. The deepest valid file (JSON with every block written as
	// an array of objects) nests about 16 levels; 32 leaves room for that
	// and keeps the parser's recursion to a few hundred KB of stack.
	MaxNestingDepth = 32

	// MaxOperators bounds the operators in one file: arithmetic, logic,
	// comparison, unary minus and not, conditionals, attribute access and
	// indexing. Specs and configs are constant data (they have no
	// variables or functions), so real files use a few (negative numbers
	// count one each); chains of operators are evaluated recursively and
	// 100 KB of "1+1+…" took 5 seconds and 300 MB.
	MaxOperators = 256

	// MaxNumberChars bounds one number literal. float64 needs 17
	// significant digits; longer literals only cost parse time.
	MaxNumberChars = 64
)

// The largest and smallest non-zero magnitudes a number literal may have
// are float64's: every numeric field is a float64 or an int32, and HCL
// keeps numbers as 512-bit floats whose decimal formatting takes time
// and memory in proportion to the exponent (a 31-byte file holding
// 1e100000000 kept a core busy for minutes).

// limitError records one source that breaks a limit, at the token that
// broke it.
func (d *Decoder) limitError(rng hcl.Range, format string, args ...any) {
	d.ErrorAt(rng, "", format, args...)
}

// checkLimits checks src against the limits above, recording a diagnostic
// for the first problem found. It reports whether src may be parsed.
func (d *Decoder) checkLimits(src []byte, json bool) bool {
	if len(src) > MaxSourceBytes {
		d.limitError(d.Start(), "the file is %d bytes, over the limit of %d bytes (%d KiB)", len(src), MaxSourceBytes, MaxSourceBytes>>10)
		return false
	}
	if json {
		return d.scanJSON(src)
	}
	return d.scanHCL(src)
}

func (d *Decoder) tooDeep(rng hcl.Range) bool {
	d.limitError(rng, "nesting is deeper than %d levels (brackets, braces, parentheses, strings, template interpolations and directives, unary operators); a spec or config needs only a few", MaxNestingDepth)
	return false
}

func (d *Decoder) tooManyOperators(rng hcl.Range) bool {
	d.limitError(rng, "more than %d operators (arithmetic, logic, conditionals, indexing, attribute access) in one file; a spec or config is constant data", MaxOperators)
	return false
}

// checkNumber reports a number literal that is too long or outside
// float64's range.
func (d *Decoder) checkNumber(lit []byte, rng hcl.Range) bool {
	if len(lit) > MaxNumberChars {
		d.limitError(rng, "number %s is %d characters long; at most %d are accepted", truncate(string(lit)), len(lit), MaxNumberChars)
		return false
	}
	f, err := strconv.ParseFloat(string(lit), 64)
	mant, _, _ := strings.Cut(strings.ToLower(string(lit)), "e")
	underflow := err == nil && f == 0 && strings.ContainsAny(mant, "123456789")
	if errors.Is(err, strconv.ErrRange) || underflow {
		d.limitError(rng, "number %s is out of range; numbers must be within ±1.8e308 and, unless 0, no closer to 0 than 4.9e-324 (float64's range)", truncate(string(lit)))
		return false
	}
	return true
}

// truncate shortens s for an error message.
func truncate(s string) string {
	const max = 40
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}

// scanHCL walks the native-syntax tokens. The lexer is a state machine
// (its own stack is a slice), so it is safe on any input; it also knows
// strings, comments and heredocs exactly as the parser does.
func (d *Decoder) scanHCL(src []byte) bool {
	toks, _ := hclsyntax.LexConfig(src, d.File, hcl.InitialPos)
	depth, directives, unary, ops := 0, 0, 0, 0
	prev := hclsyntax.TokenNil
	for i, t := range toks {
		switch t.Type {
		case hclsyntax.TokenOBrace, hclsyntax.TokenOBrack, hclsyntax.TokenOParen,
			hclsyntax.TokenOQuote, hclsyntax.TokenOHeredoc,
			hclsyntax.TokenTemplateInterp, hclsyntax.TokenTemplateControl:
			if t.Type == hclsyntax.TokenOBrack && postfix(prev) {
				// x[0]: an index, not a nested tuple.
				if ops++; ops > MaxOperators {
					return d.tooManyOperators(t.Range)
				}
			}
			if t.Type == hclsyntax.TokenTemplateControl && i+1 < len(toks) && toks[i+1].Type == hclsyntax.TokenIdent {
				// %{if} and %{for} open a directive that the template
				// parser nests into until %{endif} or %{endfor}.
				switch string(toks[i+1].Bytes) {
				case "if", "for":
					directives++
				case "endif", "endfor":
					directives = max(directives-1, 0)
				}
			}
			if depth++; depth+directives+unary > MaxNestingDepth {
				return d.tooDeep(t.Range)
			}
		case hclsyntax.TokenCBrace, hclsyntax.TokenCBrack, hclsyntax.TokenCParen,
			hclsyntax.TokenCQuote, hclsyntax.TokenCHeredoc, hclsyntax.TokenTemplateSeqEnd:
			depth = max(depth-1, 0)
		case hclsyntax.TokenMinus, hclsyntax.TokenBang:
			if !postfix(prev) {
				// A unary operator: the parser recurses into its operand.
				if unary++; depth+directives+unary > MaxNestingDepth {
					return d.tooDeep(t.Range)
				}
			}
			if ops++; ops > MaxOperators {
				return d.tooManyOperators(t.Range)
			}
		case hclsyntax.TokenPlus, hclsyntax.TokenStar, hclsyntax.TokenSlash, hclsyntax.TokenPercent,
			hclsyntax.TokenEqualOp, hclsyntax.TokenNotEqual, hclsyntax.TokenLessThan, hclsyntax.TokenLessThanEq,
			hclsyntax.TokenGreaterThan, hclsyntax.TokenGreaterThanEq, hclsyntax.TokenAnd, hclsyntax.TokenOr,
			hclsyntax.TokenQuestion, hclsyntax.TokenDot, hclsyntax.TokenEllipsis:
			if ops++; ops > MaxOperators {
				return d.tooManyOperators(t.Range)
			}
		case hclsyntax.TokenNumberLit:
			if !d.checkNumber(t.Bytes, t.Range) {
				return false
			}
		}
		switch t.Type {
		case hclsyntax.TokenMinus, hclsyntax.TokenBang, hclsyntax.TokenComment:
		default:
			unary = 0
		}
		if t.Type != hclsyntax.TokenComment {
			prev = t.Type
		}
	}
	return true
}

// postfix reports whether a token of type t ends a value, so that a
// following "[" indexes it and a following "-" subtracts from it.
func postfix(t hclsyntax.TokenType) bool {
	switch t {
	case hclsyntax.TokenCBrace, hclsyntax.TokenCBrack, hclsyntax.TokenCParen, hclsyntax.TokenCQuote,
		hclsyntax.TokenCHeredoc, hclsyntax.TokenIdent, hclsyntax.TokenNumberLit:
		return true
	}
	return false
}

// scanJSON walks JSON as hcl/json's scanner does: strings (with
// backslash escapes) are skipped, brackets and braces counted, number
// literals range-checked. JSON has no comments or operators.
func (d *Decoder) scanJSON(src []byte) bool {
	pos := hcl.InitialPos
	rng := func() hcl.Range { return hcl.Range{Filename: d.File, Start: pos, End: pos} }
	depth := 0
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == '{' || c == '[':
			if depth++; depth > MaxNestingDepth {
				return d.tooDeep(rng())
			}
		case c == '}' || c == ']':
			depth = max(depth-1, 0)
		case c == '"':
			// Skip to the closing quote; an unterminated string is the
			// parser's to report.
			j := i + 1
			for j < len(src) && src[j] != '"' {
				if src[j] == '\\' {
					j++
				}
				j++
			}
			pos = advance(pos, src[i:min(j+1, len(src))])
			i = j + 1
			continue
		case c == '-' || c == '+' || c == '.' || (c >= '0' && c <= '9'):
			j := i
			for j < len(src) && (src[j] == '-' || src[j] == '+' || src[j] == '.' || src[j] == 'e' || src[j] == 'E' || (src[j] >= '0' && src[j] <= '9')) {
				j++
			}
			if !d.checkNumber(src[i:j], rng()) {
				return false
			}
			pos = advance(pos, src[i:j])
			i = j
			continue
		}
		pos = advance(pos, src[i:i+1])
		i++
	}
	return true
}

// advance moves pos over b, counting lines and characters as HCL does
// (columns in characters, not bytes).
func advance(pos hcl.Pos, b []byte) hcl.Pos {
	for _, c := range b {
		pos.Byte++
		switch {
		case c == '\n':
			pos.Line++
			pos.Column = 1
		case utf8.RuneStart(c):
			pos.Column++
		}
	}
	return pos
}

// numberText formats a number for an error message. big.Float's decimal
// formatting costs time and memory in proportion to the exponent, so
// numbers beyond float64's range are not written out.
func numberText(f *big.Float) string {
	if f.IsInf() {
		return f.Text('g', -1)
	}
	switch exp := f.MantExp(nil); {
	case exp > 1025 && f.Sign() > 0:
		return "above 1.8e308"
	case exp > 1025:
		return "below -1.8e308"
	case exp < -1075 && f.Sign() != 0:
		return "closer to 0 than 2.5e-324"
	}
	return f.Text('g', -1)
}

// checkFor refuses for expressions (and %{for} template directives,
// which the parser turns into for expressions): over constant lists they
// multiply, so a 300-byte file of nested fors can ask for gigabytes.
// Nothing in a spec or config needs one. The walk is safe: the pre-scan
// has bounded the expression's depth.
func (d *Decoder) checkFor(expr hcl.Expression, path string) bool {
	native, ok := expr.(hclsyntax.Expression)
	if !ok {
		return true // JSON: strings are not templates without an EvalContext
	}
	var found *hclsyntax.ForExpr
	hclsyntax.VisitAll(native, func(n hclsyntax.Node) hcl.Diagnostics {
		if f, ok := n.(*hclsyntax.ForExpr); ok && found == nil {
			found = f
		}
		return nil
	})
	if found == nil {
		return true
	}
	d.fail(found.Range(), path, "for expressions and %%{for} directives are not supported: a spec or config is constant data; write the values out")
	return false
}
