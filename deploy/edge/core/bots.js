// The well-known crawlers that a rule with user_agent: good_bots lets
// through, except on dynamic paths. This is gate/bots.go's list, entry for
// entry; a Go test (gate/edge_test.go) fails when the two differ.

/** GOOD_BOTS are lower-case substrings of crawlers' user agents. */
export const GOOD_BOTS = Object.freeze([
  // good-bots:begin
  'googlebot',
  'adsbot-google',
  'storebot-google',
  'google-inspectiontool',
  'bingbot',
  'bingpreview',
  'duckduckbot',
  'applebot',
  'yandexbot',
  'baiduspider',
  'slurp',
  'facebookexternalhit',
  'facebookcatalog',
  'twitterbot',
  'linkedinbot',
  'slackbot',
  'discordbot',
  'pinterestbot',
  'telegrambot',
  'petalbot',
  'seznambot',
  'qwantbot',
  'yeti/',
  'mojeekbot',
  'amazonproductdiscovery',
  // good-bots:end
]);
