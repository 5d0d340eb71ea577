package speccore

import (
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// Eval evaluates a constant expression. Specs have no variables or
// functions, so any reference is an error.
func (d *Decoder) Eval(expr hcl.Expression, path string) (cty.Value, bool) {
	if !d.checkFor(expr, path) {
		return cty.NilVal, false
	}
	v, diags := expr.Value(nil)
	if diags.HasErrors() {
		d.hclDiags(diags, path)
		return cty.NilVal, false
	}
	if v.IsNull() || !v.IsWhollyKnown() {
		d.fail(expr.Range(), path, "must have a value, got null")
		return cty.NilVal, false
	}
	return v, true
}

// typeErr reports a value of the wrong type.
func (d *Decoder) typeErr(expr hcl.Expression, path, want string, v cty.Value) {
	d.fail(expr.Range(), path, "expected %s, got %s", want, describe(v))
}

// describe names a value's type, with the value itself for scalars.
func describe(v cty.Value) string {
	t := v.Type()
	switch {
	case t == cty.String:
		return "string " + strconv.Quote(v.AsString())
	case t == cty.Number:
		return "number " + numberText(v.AsBigFloat())
	case t == cty.Bool:
		return "bool " + strconv.FormatBool(v.True())
	case t.IsTupleType() || t.IsListType() || t.IsSetType():
		return "list"
	case t.IsObjectType() || t.IsMapType():
		return "object"
	default:
		return t.FriendlyName()
	}
}

func Str(dst *string) AttrFunc {
	return func(d *Decoder, expr hcl.Expression, path string) {
		if s, ok := d.stringValue(expr, path); ok {
			*dst = s
		}
	}
}

func (d *Decoder) stringValue(expr hcl.Expression, path string) (string, bool) {
	v, ok := d.Eval(expr, path)
	if !ok {
		return "", false
	}
	if v.Type() != cty.String {
		d.typeErr(expr, path, "a string", v)
		return "", false
	}
	return v.AsString(), true
}

func Boolean(dst *bool) AttrFunc {
	return func(d *Decoder, expr hcl.Expression, path string) {
		v, ok := d.Eval(expr, path)
		if !ok {
			return
		}
		if v.Type() != cty.Bool {
			d.typeErr(expr, path, "true or false", v)
			return
		}
		*dst = v.True()
	}
}

func Number(dst *float64) AttrFunc {
	return func(d *Decoder, expr hcl.Expression, path string) {
		if f, ok := d.numberValue(expr, path); ok {
			*dst = f
		}
	}
}

// OptNumber decodes a number whose absence matters (nil: not set).
func OptNumber(dst **float64) AttrFunc {
	return func(d *Decoder, expr hcl.Expression, path string) {
		if f, ok := d.numberValue(expr, path); ok {
			*dst = &f
		}
	}
}

func (d *Decoder) numberValue(expr hcl.Expression, path string) (float64, bool) {
	bf, ok := d.numeric(expr, path)
	if !ok {
		return 0, false
	}
	f, _ := bf.Float64()
	return f, true
}

// numeric evaluates a number attribute, reporting anything else.
func (d *Decoder) numeric(expr hcl.Expression, path string) (*big.Float, bool) {
	v, ok := d.Eval(expr, path)
	if !ok {
		return nil, false
	}
	if v.Type() != cty.Number {
		d.typeErr(expr, path, "a number", v)
		return nil, false
	}
	return v.AsBigFloat(), true
}

func Integer(dst *int) AttrFunc {
	return func(d *Decoder, expr hcl.Expression, path string) {
		if n, ok := d.intValue(expr, path); ok {
			*dst = n
		}
	}
}

// intValue decodes a whole number that fits in 32 bits (the protocol's
// int32 fields); range checks beyond that belong to Validate.
func (d *Decoder) intValue(expr hcl.Expression, path string) (int, bool) {
	bf, ok := d.numeric(expr, path)
	if !ok {
		return 0, false
	}
	if !bf.IsInt() {
		d.fail(expr.Range(), path, "expected a whole number, got %s", numberText(bf))
		return 0, false
	}
	n, acc := bf.Int64()
	if acc != big.Exact || n > math.MaxInt32 || n < math.MinInt32 {
		d.fail(expr.Range(), path, "number %s is out of range", numberText(bf))
		return 0, false
	}
	return int(n), true
}

func Unsigned(dst *uint64) AttrFunc {
	return func(d *Decoder, expr hcl.Expression, path string) {
		v, ok := d.Eval(expr, path)
		if !ok {
			return
		}
		if v.Type() != cty.Number {
			d.typeErr(expr, path, "a number", v)
			return
		}
		bf := v.AsBigFloat()
		n, acc := bf.Uint64()
		if !bf.IsInt() || acc != big.Exact {
			d.fail(expr.Range(), path, "expected a whole number of at least 0, got %s", numberText(bf))
			return
		}
		*dst = n
	}
}

func Duration(dst *time.Duration) AttrFunc {
	return func(d *Decoder, expr hcl.Expression, path string) {
		s, ok := d.stringValue(expr, path)
		if !ok {
			return
		}
		dur, err := time.ParseDuration(s)
		if err != nil {
			d.fail(expr.Range(), path, `expected a duration such as "30s", "5m" or "1h30m", got %q`, s)
			return
		}
		*dst = dur
	}
}

func QuantityValue(dst *Quantity) AttrFunc {
	return func(d *Decoder, expr hcl.Expression, path string) {
		v, ok := d.Eval(expr, path)
		if !ok {
			return
		}
		const want = `a count such as 2 or a percentage such as "5%"`
		switch v.Type() {
		case cty.Number:
			f, _ := v.AsBigFloat().Float64()
			*dst = Quantity{Value: f}
		case cty.String:
			q, err := ParseQuantity(v.AsString())
			if err != nil {
				d.fail(expr.Range(), path, "expected %s, got %q", want, v.AsString())
				return
			}
			*dst = q
		default:
			d.typeErr(expr, path, want, v)
		}
	}
}

// Ratio decodes a share: a percentage string ("1%", "0.5%") or a plain
// fraction (0.01). Range checks belong to Validate.
func Ratio(dst *float64) AttrFunc {
	return func(d *Decoder, expr hcl.Expression, path string) {
		v, ok := d.Eval(expr, path)
		if !ok {
			return
		}
		const want = `a percentage such as "1%" or a fraction such as 0.01`
		switch v.Type() {
		case cty.Number:
			*dst, _ = v.AsBigFloat().Float64()
		case cty.String:
			q, err := ParseQuantity(v.AsString())
			if err != nil || !q.Percent {
				d.fail(expr.Range(), path, "expected %s, got %q", want, v.AsString())
				return
			}
			*dst = q.Value / 100
		default:
			d.typeErr(expr, path, want, v)
		}
	}
}

func StrList(dst *[]string) AttrFunc {
	return listOf(dst, "a list of strings", (*Decoder).stringValue)
}

func IntList(dst *[]int) AttrFunc {
	return listOf(dst, "a list of numbers", (*Decoder).intValue)
}

// listOf decodes a list whose elements elem decodes. A failed element
// keeps its place (as T's zero value) so that later paths stay aligned
// with the source; it is marked failed.
func listOf[T any](dst *[]T, want string, elem func(*Decoder, hcl.Expression, string) (T, bool)) AttrFunc {
	return func(d *Decoder, expr hcl.Expression, path string) {
		elems, ok := d.list(expr, path, want)
		if !ok {
			return
		}
		var out []T
		for i, e := range elems {
			d.Pos[Index(path, i)] = e.Range()
			v, _ := elem(d, e, Index(path, i))
			out = append(out, v)
		}
		*dst = out
	}
}

// list returns the element expressions of a list, keeping each element's
// position for error messages.
func (d *Decoder) list(expr hcl.Expression, path, want string) ([]hcl.Expression, bool) {
	v, ok := d.Eval(expr, path)
	if !ok {
		return nil, false
	}
	if t := v.Type(); !t.IsTupleType() && !t.IsListType() {
		d.typeErr(expr, path, want, v)
		return nil, false
	}
	elems, diags := hcl.ExprList(expr)
	if diags.HasErrors() {
		d.hclDiags(diags, path)
		return nil, false
	}
	return elems, true
}

func StrMap(dst *map[string]string) AttrFunc {
	return func(d *Decoder, expr hcl.Expression, path string) {
		v, ok := d.Eval(expr, path)
		if !ok {
			return
		}
		if t := v.Type(); !t.IsObjectType() && !t.IsMapType() {
			d.typeErr(expr, path, "an object of strings such as { KEY = \"value\" }", v)
			return
		}
		pairs, diags := hcl.ExprMap(expr)
		if diags.HasErrors() {
			d.hclDiags(diags, path)
			return
		}
		var out map[string]string
		seen := map[string]int{}
		for _, kv := range pairs {
			key, ok := d.stringValue(kv.Key, path)
			if !ok {
				continue
			}
			kp := path + "." + key
			if line, dup := seen[key]; dup {
				d.fail(kv.Key.Range(), kp, "duplicate key %q; it is already set at line %d", key, line)
				continue
			}
			seen[key] = kv.Key.Range().Start.Line
			d.Pos[kp] = kv.Value.Range()
			if s, ok := d.stringValue(kv.Value, kp); ok {
				if out == nil {
					out = map[string]string{}
				}
				out[key] = s
			}
		}
		*dst = out
	}
}

// ParseQuantity parses "25%" as a percentage and "3" as a count.
func ParseQuantity(s string) (Quantity, error) {
	s = strings.TrimSpace(s)
	pct := strings.HasSuffix(s, "%")
	f, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(s, "%")), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return Quantity{}, &strconv.NumError{Func: "ParseQuantity", Num: s, Err: strconv.ErrSyntax}
	}
	return Quantity{Value: f, Percent: pct}, nil
}
