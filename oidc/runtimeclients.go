package oidc

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/anteroom/anteroom/config"
	"github.com/anteroom/anteroom/internal/route"
)

// RuntimeClient is a relying party an operator added while Anteroom runs
// (the admin API; package catalog keeps it in Redis): the file's fields,
// except that the secret is known only by its SHA-256. Client.Secret is
// ignored.
type RuntimeClient struct {
	Client config.Client
	// SecretHash is the SHA-256 of the client's secret; nil makes the
	// client public. The admin API draws secrets of 256 random bits, so a
	// fast hash is enough: nothing short enough to guess hides behind it.
	SecretHash []byte
}

// clientTable is the provider's relying parties: replaced whole when the
// operator adds, changes or removes one (SetClients), read with one atomic
// load on every request.
type clientTable struct {
	p atomic.Pointer[map[string]*client]
}

// get returns the client with id.
func (t *clientTable) get(id string) (*client, bool) {
	m := t.p.Load()
	if m == nil {
		return nil, false
	}
	c, ok := (*m)[id]
	return c, ok
}

// fixedClients are the clients of the file and the gate, which SetClients
// keeps: the provider's options, remembered for every rebuild.
type fixedClients struct {
	mu    sync.Mutex
	list  []config.Client
	login func(id string) string
}

// SetClients replaces the relying parties added at run time with extra,
// beside those of the file and the gate, which stay. Each client's room is
// read from the store now, so call it after the store's rooms changed
// (waitingroom.Store.SetRooms). A client whose room no longer exists
// stays known, so that its relying party is told so in OAuth's terms
// (access_denied at /authorize) rather than with a page about an unknown
// client. A client of extra with an id of the file or the gate, or a
// reserved one, is left out and reported in the error; the others are
// served.
func (p *Provider) SetClients(extra []RuntimeClient) error {
	f := p.fixed
	f.mu.Lock()
	defer f.mu.Unlock()
	m := make(map[string]*client, len(f.list)+len(extra))
	for _, c := range f.list {
		m[c.ID] = p.storage.newClient(c, f.login, nil, strings.HasPrefix(c.ID, gateClientPrefix))
	}
	var errs []error
	for _, rc := range extra {
		c := rc.Client
		switch _, dup := m[c.ID]; {
		case dup:
			errs = append(errs, fmt.Errorf("client %q is defined in the configuration file (or twice)", c.ID))
			continue
		case ReservedClientID(c.ID):
			errs = append(errs, fmt.Errorf("client %q: ids starting with %q are reserved for the built-in gate", c.ID, gateClientPrefix))
			continue
		case rc.SecretHash != nil && len(rc.SecretHash) != sha256.Size:
			errs = append(errs, fmt.Errorf("client %q: the secret's hash must be %d bytes of SHA-256", c.ID, sha256.Size))
			continue
		}
		c.Secret = ""
		m[c.ID] = p.storage.newClient(c, f.login, rc.SecretHash, false)
	}
	p.storage.clients.p.Store(&m)
	return errors.Join(errs...)
}

// newClient builds a client of cfg; hash is the secret's SHA-256 of a
// runtime client (nil: cfg.Secret's, or public when that is empty).
func (s *storage) newClient(cfg config.Client, login func(string) string, hash []byte, gate bool) *client {
	c := &client{cfg: cfg, loginURL: login, gate: gate}
	switch {
	case hash != nil:
		copy(c.secretHash[:], hash)
	case cfg.Secret != "":
		c.secretHash = sha256.Sum256([]byte(cfg.Secret))
	default:
		c.public = true
	}
	c.room, c.roomGone = s.rooms.Room(cfg.Room)
	c.roomGone = !c.roomGone
	return c
}

// ReservedClientID reports an id no configured client may have: the
// gate's, and the exact prefix too, since a client called anteroom-gate
// would get tokens whose aud is the gate's session audience.
func ReservedClientID(id string) bool {
	return strings.HasPrefix(id, gateClientPrefix) || id == strings.TrimSuffix(gateClientPrefix, "-")
}

// loginURLFor is the login URL builder of an issuer.
func loginURLFor(issuer string) func(string) string {
	return func(id string) string { return issuer + route.Wait(id) }
}
