// Package catalog keeps the rooms and relying parties an operator creates
// while Anteroom runs (the admin API, issue 16) in Redis, where every
// instance reads them: each change is announced on a pub/sub channel and
// counted in a version key that every instance also polls, so a change is
// served everywhere within a poll interval even when a notification is
// lost.
//
// A definition is stored as the YAML the configuration file would hold
// for it and decoded with package config's own strict decoder and rules on
// every load, so that a room means the same whether it came from the file
// or the API, and a definition written by an older release that no longer
// validates is reported, not served half-understood.
//
// Storage contract (Cluster-safe: no command spans two slots):
//
//   - a room's definition is one string key in the room's own slot
//     (rediskey.RoomDefinition); the index of runtime rooms is a set
//     (rediskey.CatalogRooms). Create sets the definition only if absent,
//     then adds the id to the index; delete removes the id from the index,
//     then the definition. A reader lists the index and reads each
//     definition, skipping an id whose definition is gone.
//   - the clients are one hash (rediskey.CatalogClients), field = id.
//   - an update is a compare-and-set script on the one key it changes, so
//     two operators' concurrent edits never lose one silently: the loser
//     gets ErrConflict and tries again.
//   - after every change: INCR rediskey.CatalogVersion, then PUBLISH on
//     rediskey.CatalogChanged. Both may be repeated harmlessly.
package catalog

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"
	"gopkg.in/yaml.v3"

	"github.com/anteroom/anteroom/config"
	"github.com/anteroom/anteroom/internal/rediskey"
)

// Errors callers tell apart.
var (
	// ErrExists: a room or client with that id exists already.
	ErrExists = errors.New("already exists")
	// ErrNotFound: no runtime room or client has that id.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the definition changed between its read and the write.
	ErrConflict = errors.New("changed concurrently")
)

// Record is a stored definition with its bookkeeping.
type Record struct {
	// Def is the definition as the configuration file would hold it.
	Def string `json:"def"`
	// SecretHash is a confidential client's secret's SHA-256, in hex;
	// empty for a room or a public client.
	SecretHash string `json:"secret_hash,omitempty"`
	// Rev counts the record's versions, from 1.
	Rev       int64     `json:"rev"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// UpdatedBy names the admin token (or dashboard session) of the last
	// change.
	UpdatedBy string `json:"updated_by"`
}

// Room is a runtime room.
type Room struct {
	config.Room
	Record Record
}

// Client is a runtime relying party.
type Client struct {
	config.Client
	// SecretHash is the SHA-256 of the secret; nil for a public client.
	SecretHash []byte
	Record     Record
}

// Catalog reads and writes the runtime definitions.
type Catalog struct {
	rdb redis.UniversalClient
	now func() time.Time
}

// New returns the catalog in rdb; now dates the records (nil: time.Now).
func New(rdb redis.UniversalClient, now func() time.Time) *Catalog {
	if now == nil {
		now = time.Now
	}
	return &Catalog{rdb: rdb, now: now}
}

// RoomYAML is r as the file holds it.
func RoomYAML(r config.Room) string {
	b, _ := yaml.Marshal(r)
	return string(b)
}

// ClientYAML is c as the file holds it, without its secret.
func ClientYAML(c config.Client) string {
	c.Secret = ""
	b, _ := yaml.Marshal(c)
	return string(b)
}

// casScript sets KEYS[1] to ARGV[2] if it holds ARGV[1] ("" for absent);
// with ARGV[3] set, in the hash KEYS[1] at field ARGV[3]. An empty ARGV[2]
// deletes. It returns 1 on success, 0 when the value differed.
var casScript = redis.NewScript(`
local cur
if ARGV[3] ~= "" then cur = redis.call('HGET', KEYS[1], ARGV[3]) else cur = redis.call('GET', KEYS[1]) end
if not cur then cur = "" end
if cur ~= ARGV[1] then return 0 end
if ARGV[3] ~= "" then
  if ARGV[2] == "" then redis.call('HDEL', KEYS[1], ARGV[3]) else redis.call('HSET', KEYS[1], ARGV[3], ARGV[2]) end
else
  if ARGV[2] == "" then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], ARGV[2]) end
end
return 1`)

func (c *Catalog) cas(ctx context.Context, key, field, old, next string) error {
	n, err := casScript.Run(ctx, c.rdb, []string{key}, old, next, field).Int()
	if err != nil {
		return err
	}
	if n != 1 {
		return ErrConflict
	}
	return nil
}

// changed announces a change: the version first, so that a poller that
// sees it sees the change.
func (c *Catalog) changed(ctx context.Context) error {
	if err := c.rdb.Incr(ctx, rediskey.CatalogVersion).Err(); err != nil {
		return fmt.Errorf("announce catalog change: %w", err)
	}
	if err := c.rdb.Publish(ctx, rediskey.CatalogChanged, "1").Err(); err != nil {
		return fmt.Errorf("announce catalog change: %w", err)
	}
	return nil
}

// Version is the catalog's change count.
func (c *Catalog) Version(ctx context.Context) (int64, error) {
	v, err := c.rdb.Get(ctx, rediskey.CatalogVersion).Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	return v, err
}

func encode(rec Record) string {
	b, _ := json.Marshal(rec)
	return string(b)
}

func decodeRecord(raw string) (Record, error) {
	var rec Record
	err := json.Unmarshal([]byte(raw), &rec)
	return rec, err
}

// Rooms lists the runtime rooms, sorted by id. A definition that does not
// decode (written by another release) is left out and reported in errs.
func (c *Catalog) Rooms(ctx context.Context) (rooms []Room, errs []error, err error) {
	ids, err := c.rdb.SMembers(ctx, rediskey.CatalogRooms).Result()
	if err != nil {
		return nil, nil, fmt.Errorf("list runtime rooms: %w", err)
	}
	slices.Sort(ids)
	pipe := c.rdb.Pipeline()
	gets := make([]*redis.StringCmd, len(ids))
	for i, id := range ids {
		gets[i] = pipe.Get(ctx, rediskey.RoomDefinition(id))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, nil, fmt.Errorf("read runtime rooms: %w", err)
	}
	for i, id := range ids {
		raw, err := gets[i].Result()
		if errors.Is(err, redis.Nil) {
			continue // deleted between the two reads, or half-created
		}
		r, err := parseRoom(id, raw)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		rooms = append(rooms, r)
	}
	return rooms, errs, nil
}

func parseRoom(id, raw string) (Room, error) {
	rec, err := decodeRecord(raw)
	if err != nil {
		return Room{}, fmt.Errorf("runtime room %q: %w", id, err)
	}
	r, err := config.ParseRoom([]byte(rec.Def))
	if err != nil {
		return Room{}, fmt.Errorf("runtime room %q: %w", id, err)
	}
	if r.ID != id {
		return Room{}, fmt.Errorf("runtime room %q: its definition names %q", id, r.ID)
	}
	return Room{Room: *r, Record: rec}, nil
}

// Room reads one runtime room.
func (c *Catalog) Room(ctx context.Context, id string) (Room, error) {
	raw, err := c.rdb.Get(ctx, rediskey.RoomDefinition(id)).Result()
	if errors.Is(err, redis.Nil) {
		return Room{}, ErrNotFound
	}
	if err != nil {
		return Room{}, fmt.Errorf("read runtime room %q: %w", id, err)
	}
	return parseRoom(id, raw)
}

// CreateRoom stores a new runtime room (validated by the caller, with
// config.ParseRoom), by the admin named by.
func (c *Catalog) CreateRoom(ctx context.Context, r config.Room, by string) (Room, error) {
	now := c.now().UTC()
	rec := Record{Def: RoomYAML(r), Rev: 1, CreatedAt: now, UpdatedAt: now, UpdatedBy: by}
	key := rediskey.RoomDefinition(r.ID)
	ok, err := c.rdb.SetNX(ctx, key, encode(rec), 0).Result()
	if err != nil {
		return Room{}, fmt.Errorf("create room %q: %w", r.ID, err)
	}
	if !ok {
		// A definition without an index entry is a create that stopped
		// half-way: it is taken over.
		listed, err := c.rdb.SIsMember(ctx, rediskey.CatalogRooms, r.ID).Result()
		if err != nil {
			return Room{}, fmt.Errorf("create room %q: %w", r.ID, err)
		}
		if listed {
			return Room{}, ErrExists
		}
		if err := c.rdb.Set(ctx, key, encode(rec), 0).Err(); err != nil {
			return Room{}, fmt.Errorf("create room %q: %w", r.ID, err)
		}
	}
	if err := c.rdb.SAdd(ctx, rediskey.CatalogRooms, r.ID).Err(); err != nil {
		return Room{}, fmt.Errorf("create room %q: %w", r.ID, err)
	}
	return Room{Room: r, Record: rec}, c.changed(ctx)
}

// UpdateRoom replaces runtime room id's definition with what change makes
// of the current one, and returns both. It fails with ErrConflict when the
// room changed in between.
func (c *Catalog) UpdateRoom(ctx context.Context, id, by string, change func(config.Room) (config.Room, error)) (before, after Room, err error) {
	key := rediskey.RoomDefinition(id)
	raw, err := c.rdb.Get(ctx, key).Result()
	if errors.Is(err, redis.Nil) {
		return Room{}, Room{}, ErrNotFound
	}
	if err != nil {
		return Room{}, Room{}, fmt.Errorf("read runtime room %q: %w", id, err)
	}
	before, err = parseRoom(id, raw)
	if err != nil {
		return Room{}, Room{}, err
	}
	next, err := change(before.Room)
	if err != nil {
		return Room{}, Room{}, err
	}
	next.ID = id
	rec := before.Record
	rec.Def, rec.Rev, rec.UpdatedAt, rec.UpdatedBy = RoomYAML(next), rec.Rev+1, c.now().UTC(), by
	if err := c.cas(ctx, key, "", raw, encode(rec)); err != nil {
		return Room{}, Room{}, err
	}
	return before, Room{Room: next, Record: rec}, c.changed(ctx)
}

// DeleteRoom removes runtime room id and returns what it was.
func (c *Catalog) DeleteRoom(ctx context.Context, id string) (Room, error) {
	before, err := c.Room(ctx, id)
	if err != nil {
		return Room{}, err
	}
	if err := c.rdb.SRem(ctx, rediskey.CatalogRooms, id).Err(); err != nil {
		return Room{}, fmt.Errorf("delete room %q: %w", id, err)
	}
	if err := c.rdb.Del(ctx, rediskey.RoomDefinition(id)).Err(); err != nil {
		return Room{}, fmt.Errorf("delete room %q: %w", id, err)
	}
	return before, c.changed(ctx)
}

// Clients lists the runtime clients, sorted by id; like Rooms.
func (c *Catalog) Clients(ctx context.Context) (clients []Client, errs []error, err error) {
	all, err := c.rdb.HGetAll(ctx, rediskey.CatalogClients).Result()
	if err != nil {
		return nil, nil, fmt.Errorf("list runtime clients: %w", err)
	}
	ids := make([]string, 0, len(all))
	for id := range all {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		cl, err := parseClient(id, all[id])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		clients = append(clients, cl)
	}
	return clients, errs, nil
}

func parseClient(id, raw string) (Client, error) {
	rec, err := decodeRecord(raw)
	if err != nil {
		return Client{}, fmt.Errorf("runtime client %q: %w", id, err)
	}
	var hash []byte
	if rec.SecretHash != "" {
		hash, err = hex.DecodeString(rec.SecretHash)
		if err != nil || len(hash) != sha256.Size {
			return Client{}, fmt.Errorf("runtime client %q: malformed secret hash", id)
		}
	}
	// Rooms are checked when the client is served, against the rooms of
	// that moment: a client may outlive its room (see oidc.SetClients).
	cl, err := config.ParseClient([]byte(rec.Def), hash != nil, func(string) bool { return true })
	if err != nil {
		return Client{}, fmt.Errorf("runtime client %q: %w", id, err)
	}
	if cl.ID != id {
		return Client{}, fmt.Errorf("runtime client %q: its definition names %q", id, cl.ID)
	}
	return Client{Client: *cl, SecretHash: hash, Record: rec}, nil
}

// Client reads one runtime client.
func (c *Catalog) Client(ctx context.Context, id string) (Client, error) {
	raw, err := c.rdb.HGet(ctx, rediskey.CatalogClients, id).Result()
	if errors.Is(err, redis.Nil) {
		return Client{}, ErrNotFound
	}
	if err != nil {
		return Client{}, fmt.Errorf("read runtime client %q: %w", id, err)
	}
	return parseClient(id, raw)
}

// CreateClient stores a new runtime client whose secret's SHA-256 is
// secretHash (nil: public).
func (c *Catalog) CreateClient(ctx context.Context, cl config.Client, secretHash []byte, by string) (Client, error) {
	now := c.now().UTC()
	rec := Record{Def: ClientYAML(cl), Rev: 1, CreatedAt: now, UpdatedAt: now, UpdatedBy: by}
	if secretHash != nil {
		rec.SecretHash = hex.EncodeToString(secretHash)
	}
	ok, err := c.rdb.HSetNX(ctx, rediskey.CatalogClients, cl.ID, encode(rec)).Result()
	if err != nil {
		return Client{}, fmt.Errorf("create client %q: %w", cl.ID, err)
	}
	if !ok {
		return Client{}, ErrExists
	}
	cl.Secret = ""
	return Client{Client: cl, SecretHash: secretHash, Record: rec}, c.changed(ctx)
}

// UpdateClient replaces runtime client id's definition with what change
// makes of it; the secret stays. Like UpdateRoom.
func (c *Catalog) UpdateClient(ctx context.Context, id, by string, change func(config.Client) (config.Client, error)) (before, after Client, err error) {
	raw, err := c.rdb.HGet(ctx, rediskey.CatalogClients, id).Result()
	if errors.Is(err, redis.Nil) {
		return Client{}, Client{}, ErrNotFound
	}
	if err != nil {
		return Client{}, Client{}, fmt.Errorf("read runtime client %q: %w", id, err)
	}
	before, err = parseClient(id, raw)
	if err != nil {
		return Client{}, Client{}, err
	}
	next, err := change(before.Client)
	if err != nil {
		return Client{}, Client{}, err
	}
	next.ID, next.Secret = id, ""
	rec := before.Record
	rec.Def, rec.Rev, rec.UpdatedAt, rec.UpdatedBy = ClientYAML(next), rec.Rev+1, c.now().UTC(), by
	if err := c.cas(ctx, rediskey.CatalogClients, id, raw, encode(rec)); err != nil {
		return Client{}, Client{}, err
	}
	return before, Client{Client: next, SecretHash: before.SecretHash, Record: rec}, c.changed(ctx)
}

// DeleteClient removes runtime client id and returns what it was.
func (c *Catalog) DeleteClient(ctx context.Context, id string) (Client, error) {
	raw, err := c.rdb.HGet(ctx, rediskey.CatalogClients, id).Result()
	if errors.Is(err, redis.Nil) {
		return Client{}, ErrNotFound
	}
	if err != nil {
		return Client{}, fmt.Errorf("read runtime client %q: %w", id, err)
	}
	before, err := parseClient(id, raw)
	if err != nil {
		return Client{}, err
	}
	if err := c.cas(ctx, rediskey.CatalogClients, id, raw, ""); err != nil {
		return Client{}, err
	}
	return before, c.changed(ctx)
}
