package config

import (
	"errors"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"
)

// The admin API creates rooms and clients while Anteroom runs (issue 16).
// It takes exactly the keys of a room or a client of the file, decoded by
// the same strict decoder and checked by the same rules, so that one
// document means the same in both places; only the paths in errors differ:
// "admission.rate_per_minute", not "rooms[0].admission.rate_per_minute".
// Environment references (${NAME}) are not substituted in a request: the
// server's environment is not the caller's to read.

// ParseRoom decodes one room as the admin API receives it (a JSON object,
// or YAML), fills in the file's defaults and validates it. Errors name
// the key. origin_health, identity and a challenge are refused: an
// instance sets them up when it starts, so such a room belongs in the file.
func ParseRoom(data []byte) (*Room, error) {
	r := new(Room)
	if err := decodeOne(data, r); err != nil {
		return nil, err
	}
	r.applyDefaults()
	if err := ValidateRoom(*r); err != nil {
		return nil, err
	}
	return r, nil
}

// ValidateRoom checks a room on its own, as Validate checks each of the
// file's, with errors naming its keys without a rooms[N] prefix.
func ValidateRoom(r Room) error {
	v := new(validator)
	v.room("", r)
	if r.OriginHealth != nil {
		v.add(".origin_health", "not available for rooms created through the admin API: an instance sets up its probes when it starts, so define this room in the configuration file")
	}
	// An instance wires a room's identity provider and its proof of work
	// when it starts, from the file: accepted here, either would be
	// silently not enforced, a room that looks protected and is not.
	if r.Identity != nil {
		v.add(".identity", "not available for rooms created through the admin API: an instance sets up its identity providers when it starts, so define this room in the configuration file")
	}
	if r.Challenge.Mode != "" && r.Challenge.Mode != "off" {
		v.add(".challenge", "not available for rooms created through the admin API: an instance sets up its proofs of work when it starts, so define this room in the configuration file")
	}
	return v.relative()
}

// ParseClient decodes one client as the admin API receives it, like
// ParseRoom. roomExists tells the rooms it may name. The API draws a
// confidential client's secret itself and keeps only its hash, so the body
// may not carry one: confidential says whether the client will have a
// secret, and the rules for public clients (https redirects) apply only
// when it will not.
func ParseClient(data []byte, confidential bool, roomExists func(id string) bool) (*Client, error) {
	c := new(Client)
	if err := decodeOne(data, c); err != nil {
		return nil, err
	}
	if c.Secret != "" {
		return nil, fieldErr("secret", "is drawn by the server and shown once, at creation; leave it out")
	}
	check := *c
	if confidential {
		check.Secret = strings.Repeat("s", minSecretChars)
	}
	if err := ValidateClient(check, roomExists); err != nil {
		return nil, err
	}
	return c, nil
}

// ValidateClient checks a client on its own, like ValidateRoom.
func ValidateClient(c Client, roomExists func(id string) bool) error {
	v := new(validator)
	v.client("", c, roomExists)
	return v.relative()
}

// decodeOne decodes a single mapping into v (a pointer to a struct of the
// file) with the file's decoder: unknown keys and wrong types are errors
// naming the key.
func decodeOne(data []byte, v any) error {
	root, err := parseDocument(data)
	if err != nil {
		// parseDocument speaks of a config file.
		return errors.New(strings.Replace(err.Error(), "config", "body", 1))
	}
	d := &decoder{active: map[*yaml.Node]bool{}}
	d.decode(root, reflect.ValueOf(v).Elem(), "")
	return errors.Join(d.errs...)
}

// relative returns the problems joined, with the leading "." of paths
// built under an empty prefix removed.
func (v *validator) relative() error {
	for _, e := range v.errs {
		if fe, ok := e.(*fieldError); ok {
			fe.path = strings.TrimPrefix(fe.path, ".")
		}
	}
	return errors.Join(v.errs...)
}
