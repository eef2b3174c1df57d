// Package route owns the URL paths that more than one package builds or
// matches: the OIDC endpoints (served by oidc, labelled by web's metrics,
// called in-process by the gate), the waiting page's (built by oidc as the
// login URL, served by web) and the gate's (served by gate, registered as
// a redirect URI by oidc). Paths one package alone serves, such as the
// admin API's, stay in that package.
package route

// The OIDC provider's endpoints, under the issuer. They are zitadel/oidc's
// default paths, which the provider keeps; discovery advertises them.
const (
	Discovery         = "/.well-known/openid-configuration"
	Keys              = "/keys"
	Authorize         = "/authorize"
	AuthorizeCallback = "/authorize/callback"
	Token             = "/oauth/token"
	Introspect        = "/oauth/introspect"
	Userinfo          = "/userinfo"
	Revoke            = "/revoke"
	EndSession        = "/end_session"
	DeviceAuth        = "/device_authorization"
)

// ProviderPaths are the provider's endpoints, each a route of its own.
var ProviderPaths = []string{Discovery, Keys, Authorize, AuthorizeCallback, Token, Introspect, Userinfo, Revoke, EndSession}

// The built-in gate's endpoints, under the issuer.
const (
	GateAuth     = "/gate/auth"
	GateStart    = "/gate/start"
	GateCallback = "/gate/callback"
)

// UpstreamCallback is where the site's own identity provider sends the
// browser back (rooms[].identity): the redirect URI Anteroom is registered
// with there.
const UpstreamCallback = "/upstream/callback"

// Static is the prefix of the embedded style sheets and scripts.
const Static = "/static/"

// waitPrefix starts every path of a waiting page.
const waitPrefix = "/wait/"

// WaitPattern and the patterns after it are the waiting page's ServeMux
// patterns; Wait and the functions after it build the paths they match.
const (
	WaitPattern     = waitPrefix + "{id}"
	ContinuePattern = WaitPattern + "/continue"
	RequeuePattern  = WaitPattern + "/requeue"
	DeclinePattern  = WaitPattern + "/decline"
	EventsPattern   = WaitPattern + "/events"
	ProofPattern    = WaitPattern + "/proof"
	CodePattern     = WaitPattern + "/code"
	// RefusedPattern is where a person the room's identity rules refused
	// goes back to the relying party (with access_denied).
	RefusedPattern = WaitPattern + "/refused"
)

// Wait is the waiting page of the auth request id: the provider's login
// step.
func Wait(id string) string { return waitPrefix + id }

// Continue is where the page posts once its visitor is admitted.
func Continue(id string) string { return Wait(id) + "/continue" }

// Proof is where a solved challenge is posted for a place.
func Proof(id string) string { return Wait(id) + "/proof" }

// Code is where the page posts a priority code.
func Code(id string) string { return Wait(id) + "/code" }

// Refused is where the page of a person the room refused posts.
func Refused(id string) string { return Wait(id) + "/refused" }

// Events is the page's event stream.
func Events(id string) string { return Wait(id) + "/events" }

// StatusJSON is the page's status, polled as JSON.
func StatusJSON(id string) string { return Wait(id) + "?format=json" }
