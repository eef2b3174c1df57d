package web

import (
	"net/http"
	"strconv"
	"sync"
	"unicode/utf8"
)

// The visitor status document is the one answer a waiting room gives
// thousands of times a second (polls, event streams), so it is written by
// hand into pooled buffers instead of by reflection. TestStatusJSONMatches
// and FuzzStatusJSON hold it to encoding/json's output, byte for byte.

var statusBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// appendStatusJSON appends doc as encoding/json would marshal it.
func appendStatusJSON(b []byte, doc visitorJSON) []byte {
	b = append(b, `{"room":`...)
	b = appendJSONString(b, doc.Room)
	b = append(b, `,"state":`...)
	b = appendJSONString(b, string(doc.State))
	b = append(b, `,"position":`...)
	b = strconv.AppendInt(b, doc.Position, 10)
	b = append(b, `,"serving":`...)
	b = strconv.AppendInt(b, doc.Serving, 10)
	b = append(b, `,"ahead":`...)
	b = strconv.AppendInt(b, doc.Ahead, 10)
	b = append(b, `,"eta_seconds":`...)
	if doc.ETASeconds == nil {
		b = append(b, "null"...)
	} else {
		b = strconv.AppendInt(b, *doc.ETASeconds, 10)
	}
	b = append(b, `,"queue_full":`...)
	b = strconv.AppendBool(b, doc.QueueFull)
	b = append(b, `,"progress":`...)
	b = strconv.AppendInt(b, int64(doc.Progress), 10)
	if doc.OpensAt != nil {
		b = append(b, `,"opens_at":`...)
		b = strconv.AppendInt(b, *doc.OpensAt, 10)
	}
	if doc.Lane != "" {
		b = append(b, `,"lane":`...)
		b = appendJSONString(b, doc.Lane)
	}
	if doc.Event != "" {
		b = append(b, `,"event":`...)
		b = appendJSONString(b, doc.Event)
	}
	if doc.EventStartsAt != nil {
		b = append(b, `,"event_starts_at":`...)
		b = strconv.AppendInt(b, *doc.EventStartsAt, 10)
	}
	if doc.ContinueURL != "" {
		b = append(b, `,"continue_url":`...)
		b = appendJSONString(b, doc.ContinueURL)
	}
	return append(b, '}')
}

// appendJSONString appends s quoted as encoding/json quotes it by default:
// HTML-safe (<, > and & escaped), invalid UTF-8 replaced, U+2028 and U+2029
// escaped.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// writeStatusJSON answers with doc, uncached, as writeJSON would (with the
// trailing newline of json.Encoder).
func writeStatusJSON(w http.ResponseWriter, doc visitorJSON) {
	bp := statusBuffers.Get().(*[]byte)
	b := append(appendStatusJSON((*bp)[:0], doc), '\n')
	h := w.Header()
	h["Content-Type"] = jsonContentType
	h["Cache-Control"] = noStore
	h["Content-Length"] = []string{strconv.Itoa(len(b))}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
	*bp = b[:0]
	statusBuffers.Put(bp)
}

// Header values shared by every response that sets them; net/http only
// reads them.
var (
	jsonContentType = []string{"application/json"}
	noStore         = []string{"no-store"}
)
