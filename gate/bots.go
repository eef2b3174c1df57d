package gate

import "strings"

// goodBots are substrings of the user agents of well-known search-engine
// crawlers and link-preview fetchers, which a site usually wants to reach
// its pages without queueing: a crawler cannot wait in a queue, and a
// product page missing from search results or a shared link without a
// preview costs more than the load they add. They are lower-case and
// matched case-insensitively anywhere in the user agent.
//
// A user agent is whatever the client chooses to send, so anyone can
// claim to be Googlebot. That is why a rule with a user-agent matcher
// never applies on a dynamic path (config.Gate.DynamicPaths): spoofing
// one may let a visitor read a product page without queueing, which a
// crawler could have done anyway, but never reach login or checkout, the
// pages the queue protects. Verifying crawlers by reverse DNS or published
// IP ranges would close even that, at the cost of a lookup; it is not done
// here.
//
// Each entry is specific enough not to occur in a browser's user agent.
var goodBots = []string{
	"googlebot",              // Google Search (also Googlebot-Image, -News, -Video)
	"adsbot-google",          // Google Ads landing-page checks
	"storebot-google",        // Google Shopping
	"google-inspectiontool",  // Search Console
	"bingbot",                // Bing
	"bingpreview",            // Bing link previews
	"duckduckbot",            // DuckDuckGo
	"applebot",               // Apple (Siri, Spotlight)
	"yandexbot",              // Yandex
	"baiduspider",            // Baidu
	"slurp",                  // Yahoo
	"facebookexternalhit",    // Facebook and Messenger link previews
	"facebookcatalog",        // Facebook product catalogue
	"twitterbot",             // X / Twitter cards
	"linkedinbot",            // LinkedIn previews
	"slackbot",               // Slack unfurling (also Slackbot-LinkExpanding)
	"discordbot",             // Discord embeds
	"pinterestbot",           // Pinterest
	"telegrambot",            // Telegram previews
	"petalbot",               // Huawei Petal Search
	"seznambot",              // Seznam
	"qwantbot",               // Qwant
	"yeti/",                  // Naver
	"mojeekbot",              // Mojeek
	"amazonproductdiscovery", // Amazon product discovery
}

// goodBotsByFirst indexes goodBots by their first byte, and
// goodBotBigrams is a bitmap of their first two bytes, so that a search
// skips almost every position of a user agent after one bit test, rather
// than scanning the user agent once per name.
var (
	goodBotsByFirst [256][]string
	goodBotBigrams  [1 << 16 / 64]uint64
)

func init() {
	for _, s := range goodBots {
		if len(s) < 2 || s != strings.ToLower(s) {
			panic("gate: goodBots entries must be lower-case and at least 2 bytes: " + s)
		}
		goodBotsByFirst[s[0]] = append(goodBotsByFirst[s[0]], s)
		k := uint16(s[0])<<8 | uint16(s[1])
		goodBotBigrams[k>>6] |= 1 << (k & 63)
	}
}

// IsGoodBot reports whether userAgent names one of the built-in
// well-known crawlers, matched case-insensitively as a substring. A user
// agent is trivially spoofed: this says what a client claims, not what it
// is, which is why user-agent rules never match on dynamic paths.
func IsGoodBot(userAgent string) bool {
	if len(userAgent) < 2 {
		return false
	}
	next := toLower(userAgent[0])
	for i := 0; i+1 < len(userAgent); i++ {
		first := next
		next = toLower(userAgent[i+1])
		k := uint16(first)<<8 | uint16(next)
		if goodBotBigrams[k>>6]&(1<<(k&63)) == 0 {
			continue
		}
		for _, name := range goodBotsByFirst[first] {
			if hasPrefixFold(userAgent[i:], name) {
				return true
			}
		}
	}
	return false
}

// hasPrefixFold reports whether s starts with prefix, ignoring ASCII case
// only. Unicode case folding is left out on purpose: nothing on the path
// to a backend folds "K" (the Kelvin sign) to k.
func hasPrefixFold(s, prefix string) bool {
	if len(s) < len(prefix) {
		return false
	}
	for i := range len(prefix) {
		if toLower(s[i]) != toLower(prefix[i]) {
			return false
		}
	}
	return true
}

// equalFold reports whether a and b are equal ignoring ASCII case.
func equalFold(a, b string) bool {
	return len(a) == len(b) && hasPrefixFold(a, b)
}

func toLower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + ('a' - 'A')
	}
	return c
}
