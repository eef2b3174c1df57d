package web

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/anteroom/anteroom/waitingroom"
)

func statusSamples() []visitorJSON {
	eta, opens := int64(95), int64(1767225600)
	return []visitorJSON{
		{},
		{VisitorStatus: waitingroom.VisitorStatus{Room: "launch", State: waitingroom.VisitorWaiting, Position: 1042, Serving: 980, Ahead: 61, ETASeconds: &eta}},
		{VisitorStatus: waitingroom.VisitorStatus{Room: "launch", State: waitingroom.VisitorAdmitted, Position: 7, Serving: 9, QueueFull: true},
			ContinueURL: "https://shop.example.com/_anteroom/wait/AbC-_x/continue"},
		{VisitorStatus: waitingroom.VisitorStatus{Room: "pre", State: waitingroom.VisitorWaiting, OpensAt: &opens, Position: -1}},
		{VisitorStatus: waitingroom.VisitorStatus{Room: "launch", State: waitingroom.VisitorWaiting, Position: 88, Ahead: 3, Lane: "vip\"<"}},
		{VisitorStatus: waitingroom.VisitorStatus{Room: "q\"<>&\\\n\t\x01é\u2028\xff"}, ContinueURL: "http://x/?a=1&b=<2>"},
	}
}

func TestStatusJSONMatchesEncodingJSON(t *testing.T) {
	for _, doc := range statusSamples() {
		want, _ := json.Marshal(doc)
		if got := appendStatusJSON(nil, doc); string(got) != string(want) {
			t.Errorf("appendStatusJSON:\n got %s\nwant %s", got, want)
		}
	}
}

// A field added to the status must reach the hand-written encoder: every
// field, set to a value that is not its zero (so omitempty cannot hide
// it), comes out as encoding/json writes it.
func TestStatusJSONCoversEveryField(t *testing.T) {
	var doc visitorJSON
	fillFields(t, reflect.ValueOf(&doc).Elem())
	want, _ := json.Marshal(doc)
	if got := appendStatusJSON(nil, doc); string(got) != string(want) {
		t.Errorf("appendStatusJSON misses a field:\n got %s\nwant %s", got, want)
	}
}

// fillFields sets every field of the struct v to a value that is not its zero.
func fillFields(t *testing.T, v reflect.Value) {
	for i := range v.NumField() {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.Struct:
			fillFields(t, f)
			continue
		case reflect.Pointer:
			f.Set(reflect.New(f.Type().Elem()))
			f = f.Elem()
		}
		switch f.Kind() {
		case reflect.String:
			f.SetString("x" + v.Type().Field(i).Name)
		case reflect.Int, reflect.Int64, reflect.Int32:
			f.SetInt(int64(41 + i))
		case reflect.Bool:
			f.SetBool(true)
		default:
			t.Fatalf("status field %s is a %s: teach fillFields and appendStatusJSON about it", v.Type().Field(i).Name, f.Kind())
		}
	}
}

func FuzzStatusJSON(f *testing.F) {
	for _, doc := range statusSamples() {
		f.Add(doc.Room, string(doc.State), doc.Position, doc.Serving, doc.Ahead, int64(3), true, doc.ContinueURL)
	}
	f.Fuzz(func(t *testing.T, room, state string, position, serving, ahead, eta int64, full bool, continueURL string) {
		doc := visitorJSON{VisitorStatus: waitingroom.VisitorStatus{Room: room, State: waitingroom.VisitorState(state),
			Position: position, Serving: serving, Ahead: ahead, QueueFull: full}, ContinueURL: continueURL}
		if eta%2 == 0 {
			doc.ETASeconds = &eta
		}
		if eta%3 == 0 {
			doc.OpensAt = &eta
		}
		want, _ := json.Marshal(doc)
		if got := appendStatusJSON(nil, doc); string(got) != string(want) {
			t.Errorf("appendStatusJSON:\n got %s\nwant %s", got, want)
		}
	})
}
