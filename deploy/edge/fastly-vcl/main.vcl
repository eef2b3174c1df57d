# The service's main VCL (Fastly: VCL > Custom VCL > main), Fastly's
# boilerplate with Anteroom's three calls. Upload anteroom.vcl beside it
# under the name "anteroom". The backends anteroom (F_anteroom) and the
# site's origin, and the dictionary anteroom_keys, are the service's own.
include "anteroom";

sub vcl_recv {
#FASTLY recv
  call anteroom_recv;
  if (req.method != "HEAD" && req.method != "GET" && req.method != "FASTLYPURGE") {
    return(pass);
  }
  return(lookup);
}

sub vcl_hash {
#FASTLY hash
  set req.hash += req.url;
  set req.hash += req.http.host;
  return(hash);
}

sub vcl_hit {
#FASTLY hit
  return(deliver);
}

sub vcl_miss {
#FASTLY miss
  return(fetch);
}

sub vcl_pass {
#FASTLY pass
  return(pass);
}

sub vcl_fetch {
#FASTLY fetch
  return(deliver);
}

sub vcl_error {
#FASTLY error
  call anteroom_error;
  return(deliver);
}

sub vcl_deliver {
#FASTLY deliver
  call anteroom_deliver;
  return(deliver);
}

sub vcl_log {
#FASTLY log
}
