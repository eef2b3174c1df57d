package config

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Redis says how to reach the Redis that holds the queues. Exactly one of
// URL (a single node) or Addrs (Cluster, or Sentinel with MasterName) is
// used; Validate allows neither so that anteroom demo can run an embedded
// store, and serve calls RequireRedis.
type Redis struct {
	// URL is a single node as redis://[user:password@]host[:port][/db], or
	// rediss:// for TLS. Query parameters are rejected because the
	// settings they carry have their own keys here, and two places for one
	// setting is one too many.
	URL string `yaml:"url"`
	// Addrs are host:port seed addresses: of Cluster nodes, or of Sentinels
	// when MasterName is set. One address is enough for Cluster, as the
	// rest of the topology is discovered from it.
	Addrs []string `yaml:"addrs"`
	// MasterName selects Sentinel mode and names the monitored master.
	MasterName string `yaml:"master_name"`
	// Username is the ACL user. When set it overrides the one in URL, so a
	// URL can be shared while the credential comes from ${ENV}. With
	// Sentinel it authenticates to the Redis servers, not the Sentinels.
	Username string `yaml:"username"`
	// Password overrides the one in URL when set, for the same reason as
	// Username.
	Password string `yaml:"password"`
	// DialTimeout bounds connecting, so that a dead Redis fails requests
	// quickly instead of holding them. The default is 2s.
	DialTimeout Duration `yaml:"dial_timeout"`
	// ReadTimeout bounds each reply. The default is 1s.
	ReadTimeout Duration `yaml:"read_timeout"`
	// WriteTimeout bounds each command write. The default is 1s.
	WriteTimeout Duration `yaml:"write_timeout"`
	// RequestTimeout bounds all the Redis work of one HTTP request, go-redis's
	// retries included: past it the request answers 503 with Retry-After
	// (pages) or temporarily_unavailable (OAuth). Event streams, which
	// read no Redis while open, are exempt. The default is 3s.
	RequestTimeout Duration `yaml:"request_timeout"`
	// PoolSize is the number of connections per node; 0 keeps go-redis's
	// default, which scales with GOMAXPROCS.
	PoolSize int `yaml:"pool_size"`
}

// Configured reports whether any Redis address was given; when none was,
// anteroom demo runs an embedded store instead.
func (r Redis) Configured() bool {
	return r.URL != "" || len(r.Addrs) > 0
}

// RequireRedis reports an error when no Redis is configured. Validate
// allows that for anteroom demo; serve calls this because a real
// deployment with an in-process store would lose every queue on restart
// and could not be scaled out.
func (c *Config) RequireRedis() error {
	if !c.Redis.Configured() {
		return fieldErr("redis", "url or addrs is required")
	}
	return nil
}

// Options converts r to go-redis options for redis.NewUniversalClient.
// With Addrs and no MasterName it sets IsClusterMode, so that a single seed
// address still yields a Cluster client rather than a single-node one.
func (r Redis) Options() (*redis.UniversalOptions, error) {
	o := new(redis.UniversalOptions)
	switch {
	case r.URL != "" && len(r.Addrs) > 0:
		return nil, fieldErr("redis", "url and addrs are mutually exclusive")
	case r.URL != "":
		u, err := parseRedisURL(r.URL)
		if err != nil {
			return nil, fieldErr("redis.url", err.Error())
		}
		o.Addrs = []string{u.Addr}
		o.Username = u.Username
		o.Password = u.Password
		o.DB = u.DB
		o.TLSConfig = u.TLSConfig
	case len(r.Addrs) > 0:
		o.Addrs = slices.Clone(r.Addrs)
		o.MasterName = r.MasterName
		o.IsClusterMode = r.MasterName == ""
	default:
		return nil, fieldErr("redis", "url or addrs is required")
	}
	if r.Username != "" {
		o.Username = r.Username
	}
	if r.Password != "" {
		o.Password = r.Password
	}
	o.DialTimeout = r.DialTimeout.D()
	o.ReadTimeout = r.ReadTimeout.D()
	o.WriteTimeout = r.WriteTimeout.D()
	o.PoolSize = r.PoolSize
	// Without it go-redis ignores the context's deadline on the socket
	// and in its retries, so RequestTimeout would not bound anything, and
	// a request whose visitor left would keep waiting on a stalled Redis.
	o.ContextTimeoutEnabled = true
	// go-redis retries a command whose dial failed (MaxRetries, with
	// backoff) and, by default, each dial five times more: a dead Redis
	// then held every request for about two seconds before its 503.
	o.DialerRetries = 1
	return o, nil
}

// parseRedisURL wraps redis.ParseURL with the restrictions UniversalOptions
// needs, and with errors that never echo the URL, since it may hold a
// password.
func parseRedisURL(raw string) (*redis.Options, error) {
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error quotes the whole URL, password included
		}
		return nil, fmt.Errorf("invalid URL: %v", err)
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		// go-redis also knows unix://, but UniversalOptions has no way to
		// carry the network, so it would silently dial TCP instead.
		return nil, fmt.Errorf("scheme must be redis or rediss, got %q", u.Scheme)
	}
	if u.RawQuery != "" || u.ForceQuery {
		return nil, errors.New("query parameters are not supported: use the redis.* keys")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		// Most likely an unescaped # in the password, which url.Parse
		// reads as the start of a fragment.
		return nil, errors.New("must not contain # (percent-encode it as %23 in a password)")
	}
	o, err := redis.ParseURL(raw)
	if err != nil {
		return nil, errors.New(strings.TrimPrefix(err.Error(), "redis: "))
	}
	return o, nil
}
