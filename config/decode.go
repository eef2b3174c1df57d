package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// fieldError is an error about one key. Every error this package returns
// for file content is one of these (or a join of them), so each line starts
// with the key it is about.
type fieldError struct {
	path string
	msg  string
}

func (e *fieldError) Error() string {
	if e.path == "" {
		return e.msg
	}
	return e.path + ": " + e.msg
}

func fieldErr(path, format string, args ...any) error {
	if len(args) > 0 {
		format = fmt.Sprintf(format, args...)
	}
	return &fieldError{path: path, msg: format}
}

// keyPath appends a mapping key to a path: "" + "redis" is "redis",
// "redis" + "url" is "redis.url".
func keyPath(path, key string) string {
	if !plainKey(key) {
		// A key the schema never has (it is about to be reported as
		// unknown) may hold anything, line breaks included: quoted, the
		// error stays on one line and says exactly what the file says.
		key = strconv.Quote(key)
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

// plainKey reports whether key can appear in a path as it is: nothing
// that would need escaping, and nothing that reads as path syntax.
func plainKey(key string) bool {
	return key != "" && oneLine(key) && !strings.ContainsAny(key, ` ."[]`)
}

// oneLine reports whether s prints as it is: printable, no line breaks,
// nothing strconv.Quote would escape.
func oneLine(s string) bool { return strconv.Quote(s) == `"`+s+`"` }

// indexPath appends a sequence index to a path: "rooms" + 1 is "rooms[1]".
func indexPath(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

// parseDocument reads exactly one YAML document and returns its root,
// which must be a mapping.
func parseDocument(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("config is empty")
		}
		return nil, err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, err
		}
		// A second document would be silently ignored by a plain
		// Unmarshal, and with it whatever the operator put there.
		return nil, errors.New("config must be a single YAML document, found more than one")
	}
	if len(doc.Content) == 0 || isNull(doc.Content[0]) {
		return nil, errors.New("config is empty")
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("config must be a YAML mapping, got %s", kindName(root))
	}
	return root, nil
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		if isNull(n) {
			return "null"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "a document"
}

// envName is what may appear between ${ and }: the POSIX shell's rule for
// variable names.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// substituteEnv replaces ${NAME} references in every scalar value under n,
// in place, and returns one error per problem, naming the key.
//
// It works on the node tree rather than the raw text so that a value can
// never change the document's structure (a secret containing ": " or a
// newline stays one string), and so that errors can name the key. Keys are
// left alone: a key that depends on the environment is a different schema
// on every host. Alias nodes are skipped because the anchored node they
// point to is substituted where it is defined; visiting it twice would
// expand "$${X}" first to "${X}" and then to X's value.
func substituteEnv(n *yaml.Node, path string, lookup func(string) (string, bool)) []error {
	var errs []error
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			errs = append(errs, substituteEnv(c, path, lookup)...)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			errs = append(errs, substituteEnv(n.Content[i+1], keyPath(path, n.Content[i].Value), lookup)...)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			errs = append(errs, substituteEnv(c, indexPath(path, i), lookup)...)
		}
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "$") {
			return nil
		}
		v, msgs := expandEnv(n.Value, lookup)
		for _, m := range msgs {
			errs = append(errs, fieldErr(path, m))
		}
		if len(msgs) == 0 && v != n.Value {
			n.Value = v
			// The parser tagged "${RATE}" as a string. Clearing the tag of
			// a plain, untagged scalar lets the substituted text be read
			// as if it had been written there, so rate_per_minute: ${RATE}
			// is a number. Quoted or explicitly tagged scalars keep theirs.
			const keep = yaml.TaggedStyle | yaml.DoubleQuotedStyle | yaml.SingleQuotedStyle |
				yaml.LiteralStyle | yaml.FoldedStyle
			if n.Style&keep == 0 {
				n.Tag = ""
			}
		}
	}
	return errs
}

// expandEnv expands ${NAME} and $$ in s. A $ followed by anything else is
// kept as it is, so that a password such as "pa$word" needs no escaping.
func expandEnv(s string, lookup func(string) (string, bool)) (string, []string) {
	var b strings.Builder
	var msgs []string
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '{':
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				msgs = append(msgs, "unterminated ${ (write $$ for a literal $)")
				return s, msgs
			}
			name := s[i+2 : i+2+end]
			i += 2 + end
			if !envName.MatchString(name) {
				ref := "${" + name + "}"
				if !oneLine(ref) {
					ref = strconv.Quote(ref)
				}
				msgs = append(msgs, "invalid environment variable reference "+ref)
				continue
			}
			v, ok := lookup(name)
			if !ok {
				msgs = append(msgs, fmt.Sprintf("environment variable %s is not set", name))
				continue
			}
			b.WriteString(v)
		default:
			b.WriteByte('$')
		}
	}
	return b.String(), msgs
}

// maxNodes bounds how many nodes decodeInto visits. Aliases and merge keys
// let a small file expand into a huge tree (the "billion laughs"); the
// schema's depth limits most of that, but merges chain without limit.
const maxNodes = 100_000

// decoder decodes a node tree into a Go value by walking both together,
// which is what lets it reject unknown keys and name the key in every type
// error. yaml.v3's own KnownFields reports only a line number.
type decoder struct {
	errs    []error
	visited int
	active  map[*yaml.Node]bool // aliases being expanded, to stop cycles
}

// decodeInto decodes the root mapping into c and returns all problems
// joined, in document order.
func decodeInto(root *yaml.Node, c *Config) error {
	d := &decoder{active: map[*yaml.Node]bool{}}
	d.decode(root, reflect.ValueOf(c).Elem(), "")
	return errors.Join(d.errs...)
}

func (d *decoder) fail(path, format string, args ...any) {
	d.errs = append(d.errs, fieldErr(path, format, args...))
}

var durationType = reflect.TypeFor[Duration]()

// spend counts one visited node and reports whether the budget allows it,
// failing once when it runs out.
func (d *decoder) spend(path string) bool {
	d.visited++
	if d.visited == maxNodes+1 {
		d.fail(path, "document too large: more than %d values after expanding aliases", maxNodes)
	}
	return d.visited <= maxNodes
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if !d.spend(path) {
		return
	}
	if n.Kind == yaml.AliasNode {
		if d.active[n] {
			d.fail(path, "alias *%s refers to itself", n.Value)
			return
		}
		d.active[n] = true
		d.decode(n.Alias, v, path)
		delete(d.active, n)
		return
	}
	if isNull(n) {
		v.SetZero()
		return
	}
	if v.Type() == requireType {
		v.Set(reflect.ValueOf(d.decodeRequire(n, path)))
		return
	}
	if v.Type() == durationType {
		var dur Duration
		if err := dur.UnmarshalYAML(n); err != nil {
			d.fail(path, "%v", err)
			return
		}
		v.Set(reflect.ValueOf(dur))
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		d.decode(n, p.Elem(), path)
		v.Set(p)
	case reflect.Struct:
		// Zero first: a key given explicitly replaces a value that came in
		// through a merge key as a whole, as YAML's merge is shallow.
		v.SetZero()
		d.decodeStruct(n, v, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.fail(path, "expected a list, got %s", kindName(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			d.decode(c, s.Index(i), indexPath(path, i))
		}
		v.Set(s)
	default:
		d.decodeScalar(n, v, path)
	}
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(path, "expected a mapping, got %s", kindName(n))
		return
	}
	fields := yamlFields(v.Type())
	// Merged keys first, so that explicit keys override them wherever they
	// appear in the mapping.
	for i := 0; i+1 < len(n.Content); i += 2 {
		if isMergeKey(n.Content[i]) {
			d.merge(n.Content[i+1], v, path)
		}
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if isMergeKey(k) {
			continue
		}
		if k.Kind != yaml.ScalarNode {
			where := path
			if where == "" {
				where = "(top level)"
			}
			d.fail(where, "keys must be strings, got %s at line %d", kindName(k), k.Line)
			continue
		}
		p := keyPath(path, k.Value)
		if seen[k.Value] {
			d.fail(p, "duplicate key")
			continue
		}
		seen[k.Value] = true
		idx, ok := fields[k.Value]
		if !ok {
			d.fail(p, "unknown key")
			continue
		}
		d.decode(val, v.Field(idx), p)
	}
}

// merge applies a YAML merge key's value (a mapping, or a list of them in
// which earlier ones win) to the struct v.
func (d *decoder) merge(n *yaml.Node, v reflect.Value, path string) {
	p := keyPath(path, "<<")
	if !d.spend(p) {
		return
	}
	if n.Kind == yaml.AliasNode {
		if d.active[n] {
			d.fail(p, "alias *%s refers to itself", n.Value)
			return
		}
		d.active[n] = true
		defer delete(d.active, n)
		n = n.Alias
	}
	switch n.Kind {
	case yaml.MappingNode:
		d.decodeStruct(n, v, path)
	case yaml.SequenceNode:
		for i := len(n.Content) - 1; i >= 0; i-- {
			c := n.Content[i]
			if c.Kind == yaml.SequenceNode {
				d.fail(indexPath(p, i), "expected a mapping, got a list")
				continue
			}
			d.merge(c, v, path)
		}
	default:
		d.fail(p, "expected a mapping or a list of mappings, got %s", kindName(n))
	}
}

func isMergeKey(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.Value == "<<" && k.ShortTag() == "!!merge"
}

// yamlFields maps each yaml tag name of struct type t to its field index.
func yamlFields(t reflect.Type) map[string]int {
	m := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		m[name] = i
	}
	return m
}

func (d *decoder) decodeScalar(n *yaml.Node, v reflect.Value, path string) {
	// tags lists what the scalar may resolve to. Checking it before
	// decoding matters: yaml.v3 would silently truncate 2.5 into an int.
	var want string
	var tags []string
	switch v.Kind() {
	case reflect.String:
		want = "a string"
	case reflect.Bool:
		want, tags = "true or false", []string{"!!bool"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		want, tags = "an integer", []string{"!!int"}
	case reflect.Float32, reflect.Float64:
		want, tags = "a number", []string{"!!int", "!!float"}
	default:
		// Only reachable if a field of an unsupported type is added to
		// Config; fail loudly rather than decode it half-way.
		d.fail(path, "cannot decode into %s", v.Type())
		return
	}
	if n.Kind != yaml.ScalarNode {
		d.fail(path, "expected %s, got %s", want, kindName(n))
		return
	}
	if v.Kind() == reflect.String {
		// Whatever the scalar resolved to, the text as written is the
		// value: "port: 0123" or "token: 1e10" stay exactly that.
		v.SetString(n.Value)
		return
	}
	// Numbers and booleans are read from quoted strings too, so that
	// "${RATE}" in quotes works the same as ${RATE} without.
	c := *n
	if c.Style&yaml.TaggedStyle == 0 {
		c.Tag = ""
		c.Style = 0
	}
	if !slices.Contains(tags, c.ShortTag()) {
		d.fail(path, "expected %s, got %q", want, n.Value)
		return
	}
	if err := c.Decode(v.Addr().Interface()); err != nil {
		d.fail(path, "expected %s, got %q", want, n.Value)
	}
}
