package testredis

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// moduleRoot is the module's top directory, seen from this package.
const moduleRoot = "../.."

// TestScriptsAreClusterSafe reads every Lua script in the module's code (a
// Go string literal that calls redis.call or redis.pcall) and checks what
// Redis Cluster cannot check at run time: a script must reach keys only
// through KEYS (or a helper's parameter), never build a key name or take one
// from ARGV. Cluster refuses a script whose declared keys lie in two slots,
// but a key name built inside the script goes undeclared, and Redis serves
// it whenever it happens to live on the same node.
func TestScriptsAreClusterSafe(t *testing.T) {
	scripts := moduleScripts(t)
	perDir := map[string]int{}
	for _, s := range scripts {
		perDir[filepath.Dir(s.pos.Filename)]++
		for _, problem := range lintScript(s.src) {
			t.Errorf("%s: %s", s.pos, problem)
		}
	}
	// The linter must see the scripts it guards, or it proves nothing.
	for _, dir := range []string{"waitingroom", "oidc"} {
		if perDir[filepath.Join(moduleRoot, dir)] == 0 {
			t.Errorf("found no Lua script in %s (found %v): is the linter still reading the code?", dir, perDir)
		}
	}
}

// TestLintScript checks the linter on scripts that break each rule.
func TestLintScript(t *testing.T) {
	good := []string{
		"return redis.call('GET', KEYS[1])",
		"local function keep(key, ttl) redis.call('PEXPIRE', key, ttl) end keep(KEYS[2], ARGV[1])",
		"-- a comment may say KEYS[1] .. 'x'\nreturn redis.call('HSET', KEYS[1], 'a..b', \"c..d\")",
		"redis.call('HSET', KEYS[1], unpack(ARGV))",
		"return redis.call('TIME')",
		"for i = 1, n do redis.call('ZREM', KEYS[11 + i], ARGV[1]) end",
	}
	for _, src := range good {
		if problems := lintScript(src); len(problems) > 0 {
			t.Errorf("lintScript(%q) = %q, want no problem", src, problems)
		}
	}
	bad := []string{
		"return redis.call('GET', KEYS[1] .. ':x')",
		"local k = 'anteroom:' .. ARGV[1]\nreturn redis.call('GET', k)",
		"return redis.call('GET', ARGV[1])",
		"local k = ARGV[1]\nreturn redis.call('GET', k)",
		"redis.call('HSET', unpack(ARGV))",
		"return redis.call('GET', 'anteroom:keys')",
		`return redis.pcall("DEL", string.format('%s:x', KEYS[1]))`,
		"return redis.call('GET', table.concat({KEYS[1], 'x'}))",
		"return redis.call('GET', redis.call('GET', KEYS[1]))",
		"return redis.call('GET', string.gsub(KEYS[1], 'a', 'b'))",
		"return redis.call('GET', KEYS[ARGV[1]])",
	}
	for _, src := range bad {
		if problems := lintScript(src); len(problems) == 0 {
			t.Errorf("lintScript(%q) found no problem", src)
		}
	}
}

type script struct {
	pos token.Position
	src string
}

// moduleScripts returns every Lua script in the module's non-test Go files.
func moduleScripts(t *testing.T) []script {
	t.Helper()
	var out []script
	fset := token.NewFileSet()
	err := filepath.WalkDir(moduleRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != moduleRoot && (strings.HasPrefix(name, ".") || name == "testdata" || name == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			src, err := strconv.Unquote(lit.Value)
			if err == nil && (strings.Contains(src, "redis.call(") || strings.Contains(src, "redis.pcall(")) {
				out = append(out, script{pos: fset.Position(lit.Pos()), src: src})
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatalf("read the module's code: %v", err)
	}
	return out
}

var (
	// luaNoise is what can hold text that is not code: comments, and
	// string literals (short ones; long brackets are not used here).
	luaNoise = regexp.MustCompile(`--[^\n]*|'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*"`)
	// stringBuilding are the ways Lua builds a string.
	stringBuilding = regexp.MustCompile(`\.\.|\bstring\.|\btable\.concat\b|:\s*(?:format|gsub|sub|rep)\s*\(`)
	// redisCall is a call into Redis with its command and the start of its
	// arguments.
	redisCall = regexp.MustCompile(`redis\.p?call\(\s*('[A-Za-z]+'|"[A-Za-z]+")\s*(,?)`)
	// declaredKey is a key the script was given: KEYS at a number, or at
	// an index computed from numbers and names (KEYS[11 + i] for a list of
	// keys after eleven others), which still reaches only what was given.
	declaredKey = regexp.MustCompile(`^KEYS\[[\w\s+\-*]+\]$`)
	// function is a function's head, with its parameter list.
	function = regexp.MustCompile(`function\s*[\w.]*\s*\(([^)]*)\)`)
)

// lintScript returns what in src breaks the Cluster rules.
func lintScript(src string) []string {
	var problems []string
	code := strings.ReplaceAll(src, "...", "   ") // varargs, not concatenation
	code = luaNoise.ReplaceAllStringFunc(code, func(s string) string {
		if strings.HasPrefix(s, "--") {
			return ""
		}
		return `''`
	})
	if m := stringBuilding.FindString(code); m != "" {
		problems = append(problems, fmt.Sprintf("builds a string (%q): a key name built in a script is undeclared", m))
	}
	// Key arguments are checked in the code with comments removed but
	// strings kept, so that a literal key name is seen.
	withStrings := regexp.MustCompile(`--[^\n]*`).ReplaceAllString(src, "")
	// A helper's parameter may name a key: its callers pass it one (and
	// build none, by the rule above).
	params := map[string]bool{}
	for _, m := range function.FindAllStringSubmatch(withStrings, -1) {
		for p := range strings.SplitSeq(m[1], ",") {
			params[strings.TrimSpace(p)] = true
		}
	}
	for _, loc := range redisCall.FindAllStringSubmatchIndex(withStrings, -1) {
		cmd := strings.Trim(withStrings[loc[2]:loc[3]], `'"`)
		if loc[4] == loc[5] {
			continue // no arguments: TIME, PING
		}
		arg := firstArg(withStrings[loc[1]:])
		if !declaredKey.MatchString(arg) && !params[arg] {
			problems = append(problems, fmt.Sprintf("%s names its key as %q: pass keys in KEYS", cmd, arg))
		}
	}
	return problems
}

// firstArg returns the argument at the start of s, up to the comma or
// closing parenthesis that ends it at the same nesting depth.
func firstArg(s string) string {
	depth := 0
	for i, c := range s {
		switch c {
		case '(', '[', '{':
			depth++
		case ')', ']', '}':
			if depth == 0 {
				return strings.TrimSpace(s[:i])
			}
			depth--
		case ',':
			if depth == 0 {
				return strings.TrimSpace(s[:i])
			}
		}
	}
	return strings.TrimSpace(s)
}
