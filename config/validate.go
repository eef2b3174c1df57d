package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

const (
	// minCookieKeyBytes is the AES-256 key size, which keys.NewBox also
	// insists on; checking it here names the key at start-up.
	minCookieKeyBytes = 32
	// minSecretChars applies to the admin token and client secrets, which
	// are bearer credentials checked on every call.
	minSecretChars = 16
	// maxRate is far beyond any real backend; a larger value is a typo.
	maxRate = 1e6
	// minRoomDuration: a session_ttl or max_wait under a minute is almost
	// certainly a unit mistake (30s for 30m), and would expire visitors
	// before they could finish a login.
	minRoomDuration = time.Minute
	// minAbandonAfter stays above the waiting page's poll and event-stream
	// intervals and the heartbeat flush, so a live page is never taken
	// for a closed one.
	minAbandonAfter = 30 * time.Second
	// maxRoomNameChars keeps the waiting page's heading on a screen.
	maxRoomNameChars = 200
)

var (
	// roomIDPattern: room IDs appear in Redis keys and cookie names, so
	// they are short and need no escaping in either.
	roomIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)
	// clientIDPattern: URL-unreserved characters travel unescaped in query
	// strings and in HTTP Basic credentials (where ':' would split).
	clientIDPattern = regexp.MustCompile(`^[A-Za-z0-9._~-]{1,128}$`)
)

// validator collects every problem, in the order the checks run, which
// follows the order of the fields in the file.
type validator struct{ errs []error }

func (v *validator) add(path, format string, args ...any) {
	v.errs = append(v.errs, fieldErr(path, format, args...))
}

// Validate checks every rule and returns all problems joined, one line per
// problem, each starting with the key it is about, in a stable order. It
// expects ApplyDefaults to have run: a Config built in code is checked the
// same way as one read from a file.
func (c *Config) Validate() error {
	v := new(validator)
	v.issuer(c.Issuer)
	v.listen(c.Listen)
	v.redis(&c.Redis)
	v.secrets(&c.Secrets)
	v.signing(&c.Signing)
	v.admin(&c.Admin)
	v.rooms(c.Rooms)
	v.originHealth(c.Rooms)
	v.challenges(c.Rooms)
	v.clients(c.Clients, c.Rooms, c.Gate != nil)
	v.gate(c.Gate, roomIDs(c.Rooms))
	v.web(&c.Web)
	v.limits(&c.Limits)
	v.debug(&c.Debug)
	v.ops(&c.Ops, c.Listen, c.Debug.Listen)
	return errors.Join(v.errs...)
}

// Warnings returns what in c is valid but probably not meant, one line per
// finding, each starting with the key it is about, for anteroom serve to
// log at start-up. Unlike Validate's problems, none stops Anteroom.
func (c *Config) Warnings() []string {
	w := c.Gate.Warnings()
	for i, r := range c.Rooms {
		// A room with an identity provider gives places at the provider's
		// callback, never behind the waiting page's challenge: the account
		// is the cost of a place there.
		if r.Identity != nil && r.Challenge.Mode != "" && r.Challenge.Mode != "off" {
			w = append(w, fmt.Sprintf("%s.challenge: this room has an identity provider, whose sign-in gives the place, so nobody is asked for a proof of work; one account is one place", indexPath("rooms", i)))
		}
	}
	return w
}

func (v *validator) issuer(s string) {
	const p = "issuer"
	if s == "" {
		v.add(p, "required")
		return
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || u.Opaque != "" || u.Hostname() == "" {
		v.add(p, "must be an absolute URL, got %q", s)
		return
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && isLoopbackHost(u.Hostname()):
	case u.Scheme == "http":
		v.add(p, "must use https (http is allowed only for localhost and loopback addresses)")
	default:
		v.add(p, "must use https, got scheme %q", u.Scheme)
	}
	if u.User != nil {
		v.add(p, "must not contain user info")
	}
	if u.RawQuery != "" || u.ForceQuery {
		v.add(p, "must not have a query")
	}
	if u.Fragment != "" || strings.Contains(s, "#") {
		v.add(p, "must not have a fragment")
	}
	if strings.HasSuffix(s, "/") {
		v.add(p, "must not end with /: RPs compare the issuer byte for byte")
	}
}

// isLoopbackHost reports whether host never leaves the machine, which is
// when plain http cannot be intercepted on the network.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (v *validator) listen(s string) {
	const p = "listen"
	if s == "" {
		v.add(p, "required")
		return
	}
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		v.add(p, "must be host:port, got %q", s)
		return
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		v.add(p, "port must be a number from 0 to 65535, got %q", port)
	}
}

func (v *validator) redis(r *Redis) {
	if r.URL != "" && len(r.Addrs) > 0 {
		v.add("redis", "url and addrs are mutually exclusive")
	}
	if r.URL != "" {
		if _, err := parseRedisURL(r.URL); err != nil {
			v.add("redis.url", "%v", err)
		}
	}
	for i, a := range r.Addrs {
		host, port, err := net.SplitHostPort(a)
		n, perr := strconv.ParseUint(port, 10, 16)
		if err != nil || host == "" || perr != nil || n == 0 {
			v.add(indexPath("redis.addrs", i), "must be host:port, got %q", a)
		}
	}
	if r.MasterName != "" && len(r.Addrs) == 0 {
		v.add("redis.master_name", "requires redis.addrs (the Sentinel addresses)")
	}
	v.positive("redis.dial_timeout", r.DialTimeout)
	v.positive("redis.read_timeout", r.ReadTimeout)
	v.positive("redis.write_timeout", r.WriteTimeout)
	v.positive("redis.request_timeout", r.RequestTimeout)
	if r.PoolSize < 0 {
		v.add("redis.pool_size", "must be >= 0")
	}
}

func (v *validator) positive(path string, d Duration) {
	if d <= 0 {
		v.add(path, "must be > 0")
	}
}

func (v *validator) secrets(s *Secrets) {
	const p = "secrets.cookie_keys"
	if len(s.CookieKeys) == 0 {
		v.add(p, "at least one key is required")
		return
	}
	first := map[string]int{}
	for i, k := range s.CookieKeys {
		// Key material never appears in messages: they end up in logs.
		if len(k) < minCookieKeyBytes {
			v.add(indexPath(p, i), "must be at least %d bytes, got %d", minCookieKeyBytes, len(k))
			continue
		}
		if j, dup := first[k]; dup {
			v.add(indexPath(p, i), "duplicate of %s", indexPath(p, j))
			continue
		}
		first[k] = i
	}
}

func (v *validator) admin(a *Admin) {
	if n := utf8.RuneCountInString(a.Token); a.Token != "" && n < minSecretChars {
		v.add("admin.token", "must be at least %d characters, got %d", minSecretChars, n)
	}
	names := map[string]int{}
	tokens := map[string]int{}
	for i, t := range a.Tokens {
		p := indexPath("admin.tokens", i)
		switch j, dup := names[t.Name]; {
		case t.Name == "":
			v.add(p+".name", "required")
		case !roomIDPattern.MatchString(t.Name):
			v.add(p+".name", "must match %s, got %q", roomIDPattern, t.Name)
		case t.Name == "admin" && a.Token != "":
			v.add(p+".name", `"admin" names admin.token`)
		case dup:
			v.add(p+".name", "duplicate of admin.tokens[%d]", j)
		default:
			names[t.Name] = i
		}
		// Token material never appears in messages: they end up in logs.
		switch j, dup := tokens[t.Token]; {
		case utf8.RuneCountInString(t.Token) < minSecretChars:
			v.add(p+".token", "must be at least %d characters, got %d", minSecretChars, utf8.RuneCountInString(t.Token))
		case t.Token == a.Token:
			v.add(p+".token", "same as admin.token")
		case dup:
			v.add(p+".token", "same as admin.tokens[%d].token", j)
		default:
			tokens[t.Token] = i
		}
		if t.Role != "viewer" && t.Role != "operator" {
			v.add(p+".role", "must be viewer or operator, got %q", t.Role)
		}
	}
}

func (v *validator) rooms(rooms []Room) {
	if len(rooms) == 0 {
		v.add("rooms", "at least one room is required")
		return
	}
	first := map[string]int{}
	for i, r := range rooms {
		p := indexPath("rooms", i)
		if r.ID != "" && roomIDPattern.MatchString(r.ID) {
			if j, dup := first[r.ID]; dup {
				v.add(p+".id", "duplicate room id %q (also rooms[%d])", r.ID, j)
			} else {
				first[r.ID] = i
			}
		}
		v.room(p, r)
	}
}

// room checks one room; p is its path ("rooms[0]" in the file, "" for a
// room sent to the admin API), which every key is named under.
func (v *validator) room(p string, r Room) {
	switch {
	case r.ID == "":
		v.add(p+".id", "required")
	case !roomIDPattern.MatchString(r.ID):
		v.add(p+".id", "must match %s (it appears in Redis keys and cookie names), got %q", roomIDPattern, r.ID)
	}
	if n := utf8.RuneCountInString(r.Name); n > maxRoomNameChars {
		v.add(p+".name", "must be at most %d characters, got %d", maxRoomNameChars, n)
	}
	switch r.State {
	case stateOpen, statePaused, stateClosed, statePassthrough:
	default:
		v.add(p+".state", "must be one of open, paused, closed, passthrough, got %q", r.State)
	}
	if rate := r.Admission.RatePerMinute; rate != nil {
		switch {
		case !(*rate > 0): // also catches NaN
			v.add(p+".admission.rate_per_minute", "must be > 0")
		case *rate > maxRate:
			v.add(p+".admission.rate_per_minute", "must be <= %d", int(maxRate))
		}
	}
	if m := r.Admission.MaxActive; m != nil && *m < 1 {
		v.add(p+".admission.max_active", "must be >= 1")
	}
	if r.SessionTTL < Duration(minRoomDuration) {
		v.add(p+".session_ttl", "must be at least %s, got %s", Duration(minRoomDuration), r.SessionTTL)
	}
	if r.MaxWait < Duration(minRoomDuration) {
		v.add(p+".max_wait", "must be at least %s, got %s", Duration(minRoomDuration), r.MaxWait)
	}
	switch r.OnError {
	case OnErrorFailClosed, OnErrorFailOpen:
	default:
		v.add(p+".on_error", "must be one of fail_closed, fail_open, got %q", r.OnError)
	}
	var opens, closes time.Time
	for _, f := range []struct {
		key, value string
		into       *time.Time
	}{{"opens_at", r.OpensAt, &opens}, {"closes_at", r.ClosesAt, &closes}} {
		if f.value == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339, f.value)
		if err != nil {
			v.add(p+"."+f.key, "must be an RFC 3339 time with a zone, like 2026-12-01T09:00:00+01:00, got %q", f.value)
			continue
		}
		*f.into = t
	}
	if !opens.IsZero() && !closes.IsZero() && !closes.After(opens) {
		v.add(p+".closes_at", "must be after opens_at")
	}
	switch r.Queueing {
	case "", "fifo", "random":
	default:
		v.add(p+".queueing", "must be fifo or random, got %q", r.Queueing)
	}
	v.lanes(p, r)
	v.identity(p, r.Identity)
	if a := r.AbandonAfter; a != nil && *a != 0 && *a < Duration(minAbandonAfter) {
		v.add(p+".abandon_after", "must be 0s (off) or at least %s, got %s", Duration(minAbandonAfter), *a)
	}
}

// clients checks the relying parties. A deployment with a gate may have
// none: the gate brings its own clients, one per room it protects.
func (v *validator) clients(clients []Client, rooms []Room, gate bool) {
	if len(clients) == 0 {
		if !gate {
			v.add("clients", "at least one client is required")
		}
		return
	}
	ids := roomIDs(rooms)
	first := map[string]int{}
	for i, c := range clients {
		p := indexPath("clients", i)
		if c.ID != "" && clientIDPattern.MatchString(c.ID) {
			if j, dup := first[c.ID]; dup {
				v.add(p+".id", "duplicate client id %q (also clients[%d])", c.ID, j)
			} else {
				first[c.ID] = i
			}
		}
		v.client(p, c, func(id string) bool { return ids[id] })
	}
}

// client checks one client; p is its path, as for room, and roomExists
// tells the rooms it may name.
func (v *validator) client(p string, c Client, roomExists func(string) bool) {
	switch {
	case c.ID == "":
		v.add(p+".id", "required")
	case !clientIDPattern.MatchString(c.ID):
		v.add(p+".id", "must match %s, got %q", clientIDPattern, c.ID)
	}
	if n := utf8.RuneCountInString(c.Secret); c.Secret != "" && n < minSecretChars {
		v.add(p+".secret", "must be at least %d characters, got %d", minSecretChars, n)
	}
	if len(c.RedirectURIs) == 0 {
		v.add(p+".redirect_uris", "at least one redirect URI is required")
	}
	seen := map[string]int{}
	for j, raw := range c.RedirectURIs {
		rp := indexPath(p+".redirect_uris", j)
		if k, dup := seen[raw]; dup {
			v.add(rp, "duplicate of %s", indexPath(p+".redirect_uris", k))
			continue
		}
		seen[raw] = j
		u, err := httpURL(raw)
		if err != nil {
			v.add(rp, "%v", err)
			continue
		}
		if c.Public() && u.Scheme == "http" && !isLoopbackHost(u.Hostname()) {
			// A public client has no secret, so the redirect is all
			// that stops a code being delivered to an eavesdropper.
			v.add(rp, "a public client must use https (http is allowed only for localhost and loopback addresses)")
		}
	}
	for j, raw := range c.PostLogoutRedirectURIs {
		if _, err := httpURL(raw); err != nil {
			v.add(indexPath(p+".post_logout_redirect_uris", j), "%v", err)
		}
	}
	switch {
	case c.Room == "":
		v.add(p+".room", "required")
	case !roomExists(c.Room):
		v.add(p+".room", "unknown room %q", c.Room)
	}
}

// roomIDs is the set of the rooms' IDs, for checking references to them.
func roomIDs(rooms []Room) map[string]bool {
	ids := make(map[string]bool, len(rooms))
	for _, r := range rooms {
		ids[r.ID] = true
	}
	return ids
}

// httpURL parses an absolute http or https URL without a fragment, the
// form OAuth requires of redirect URIs. Custom schemes for native apps are
// not accepted: Anteroom fronts web shops, and a loopback redirect serves
// native apps just as well.
func httpURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		return nil, fmt.Errorf("must be an absolute URL, got %q", raw)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("must use http or https, got scheme %q", u.Scheme)
	}
	if u.Opaque != "" || u.Hostname() == "" {
		return nil, fmt.Errorf("must be an absolute URL, got %q", raw)
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return nil, fmt.Errorf("must not have a fragment")
	}
	return u, nil
}

// lanes checks a room's priority lanes (key p+".lanes").
func (v *validator) lanes(p string, r Room) {
	seen := map[string]bool{}
	for i, l := range r.Lanes {
		lp := fmt.Sprintf("%s.lanes[%d]", p, i)
		switch {
		case l.ID == "":
			v.add(lp+".id", "required")
		case !roomIDPattern.MatchString(l.ID):
			v.add(lp+".id", "must match %s, got %q", roomIDPattern, l.ID)
		case seen[l.ID]:
			v.add(lp+".id", "%q is listed twice", l.ID)
		}
		seen[l.ID] = true
		if l.Weight < 1 || l.Weight > 1000 {
			v.add(lp+".weight", "must be between 1 and 1000, got %d", l.Weight)
		}
	}
	if len(r.Lanes) > 0 && r.Queueing == "random" {
		v.add(p+".lanes", "a room with lanes must queue fifo: a lottery has no order for a lane to keep")
	}
}
