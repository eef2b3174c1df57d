package web

import (
	"encoding/json"
	"errors"
	"html/template"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/anteroom/anteroom/internal/route"
	"github.com/anteroom/anteroom/waitingroom"
)

// Priority codes on the waiting page (waitingroom/lanes.go): a visitor of
// a room with lanes enters a code, by the page's form (no script needed)
// or by the JSON API, and moves into the code's lane keeping their place.
//
//	POST /wait/{id}/code
//	  form:  code=XXXX-XXXX-XXXX              → 303 to the waiting page
//	  JSON:  {"code": "XXXX-XXXX-XXXX"}       → 200 and the status document
//
// A JSON request (Content-Type application/json, or ?format=json) gets the
// visitor's status document with "lane" set, or an error document
// {"error", "error_description"}: 400 invalid_code or code_expired, 409
// code_used_up, already_in_lane, not_needed or too_early, 404 no_lanes.
// A code that fails spends nothing and the visitor keeps their place; the
// form's answer is the waiting page with the reason (?code_error=…).

// codeOutcome is how a redemption's error is told: its JSON code and
// status, and the page's text key.
type codeOutcome struct {
	err    error
	code   string
	status int
}

var codeOutcomes = []codeOutcome{
	{waitingroom.ErrCodeUnknown, "invalid_code", http.StatusBadRequest},
	{waitingroom.ErrCodeExpired, "code_expired", http.StatusBadRequest},
	{waitingroom.ErrCodeUsedUp, "code_used_up", http.StatusConflict},
	{waitingroom.ErrInLane, "already_in_lane", http.StatusConflict},
	{waitingroom.ErrCodeNotNeeded, "not_needed", http.StatusConflict},
	{waitingroom.ErrCodeTooEarly, "too_early", http.StatusConflict},
	{waitingroom.ErrNoLanes, "no_lanes", http.StatusNotFound},
}

// codeErrorKey is the page text of a ?code_error= value, "" for none or
// one the page does not know.
func codeErrorKey(v string) string {
	for _, o := range codeOutcomes {
		if o.code == v {
			return "wait.code.error." + v
		}
	}
	return ""
}

// maxCodeBody bounds a code request: a code is 14 characters.
const maxCodeBody = 1 << 10

// redeemCode serves POST /wait/{id}/code.
func (s *Server) redeemCode(w http.ResponseWriter, r *http.Request) {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	asJSON := ct == "application/json" || wantsJSON(r)
	req, room, have, ok := s.ticketFor(w, r)
	if req != nil {
		defer req.Close()
	}
	if !ok {
		return
	}
	id := req.ID()
	if !sameOrigin(r) {
		// Another site's form would spend a code of its choosing on this
		// visitor's place.
		s.fail(w, r, msgNoTicket, nil)
		return
	}
	code, err := readCode(w, r, ct)
	if err != nil {
		if asJSON {
			writeJSON(w, http.StatusBadRequest, struct {
				Code string `json:"error"`
				Text string `json:"error_description"`
			}{"invalid_request", err.Error()})
			return
		}
		code = ""
	}
	lane, err := s.store.Redeem(r.Context(), have, code)
	for _, o := range codeOutcomes {
		if !errors.Is(err, o.err) {
			continue
		}
		if asJSON {
			writeJSON(w, o.status, struct {
				Code string `json:"error"`
				Text string `json:"error_description"`
				Lane string `json:"lane,omitempty"`
			}{o.code, builtinEnglish()["wait.code.error."+o.code], lane})
			return
		}
		http.Redirect(w, r, s.issuer+route.Wait(id)+"?code_error="+o.code, http.StatusSeeOther)
		return
	}
	if err != nil {
		s.storeFailure(w, r, err)
		return
	}
	// This instance shows the move at once; the others within their
	// refresh.
	_ = s.cache.Refresh(r.Context())
	if asJSON {
		c, _ := s.cache.Get(room.ID)
		doc := visitorJSON{VisitorStatus: s.statusOf(have, room, c, s.store.Now())}
		if doc.Lane == "" {
			doc.Lane = lane
		}
		writeStatusJSON(w, doc)
		return
	}
	http.Redirect(w, r, s.issuer+route.Wait(id), http.StatusSeeOther)
}

// readCode reads the code of a form or of a JSON body.
func readCode(w http.ResponseWriter, r *http.Request, contentType string) (string, error) {
	body := http.MaxBytesReader(w, r.Body, maxCodeBody)
	if contentType == "application/json" {
		var v struct {
			Code string `json:"code"`
		}
		if err := decodeJSON(body, &v); err != nil {
			return "", errors.New(`body: must be {"code": "…"}`)
		}
		return v.Code, nil
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return "", errors.New("body: too long")
	}
	q, err := url.ParseQuery(string(b))
	if err != nil {
		return "", errors.New("body: not a form")
	}
	return strings.TrimSpace(q.Get("code")), nil
}

// eventNotice is a room's scheduled event as the waiting page names it.
type eventNotice struct {
	Name    string
	Running bool
	// Starts is the event's opening; StartsUnix feeds the countdown.
	Starts     opening
	StartsUnix int64
	// In is the time left until the opening, as the page shows it at
	// rendering (the script counts it down).
	In string
}

// Element is the opening as a <time> element.
func (e eventNotice) Element() template.HTML { return e.Starts.Element() }

// Countdown is the time left as an element the page's script counts down.
func (e eventNotice) Countdown() template.HTML {
	return template.HTML(`<span id="event-countdown" data-starts="` + strconv.FormatInt(e.StartsUnix, 10) + `">` +
		template.HTMLEscapeString(e.In) + `</span>`)
}

// eventFor is room's event the waiting page names (nil: none within the
// next day, or none), and the message it shows instead of the room's.
func (s *Server) eventFor(l locale, room waitingroom.Room, now time.Time) (*eventNotice, string) {
	e, phase, ok := s.store.CurrentEvent(room.ID, now)
	if !ok || phase == waitingroom.PhaseScheduled && e.StartsAt.Sub(now) > 24*time.Hour {
		return nil, room.Message
	}
	msg := room.Message
	if e.Message != "" && phase != waitingroom.PhaseScheduled {
		msg = e.Message
	}
	secs := int64(e.StartsAt.Sub(now).Seconds())
	at := e.StartsAt.UTC()
	return &eventNotice{Name: e.Name, Running: phase == waitingroom.PhaseRunning,
		Starts:     opening{ISO: at.Format(time.RFC3339), Text: l.opening(at)},
		StartsUnix: e.StartsAt.Unix(), In: l.Duration(&secs)}, msg
}

// decodeJSON reads one JSON object into v, refusing unknown fields.
func decodeJSON(body io.Reader, v any) error {
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// nameEvent adds to a status the room's scheduled event that the page
// names (see eventFor), for apps that show it themselves.
func (s *Server) nameEvent(st *waitingroom.VisitorStatus, room waitingroom.Room, now time.Time) {
	e, phase, ok := s.store.CurrentEvent(room.ID, now)
	if !ok || phase == waitingroom.PhaseScheduled && e.StartsAt.Sub(now) > 24*time.Hour {
		return
	}
	starts := e.StartsAt.Unix()
	st.Event, st.EventStartsAt = e.Name, &starts
}
