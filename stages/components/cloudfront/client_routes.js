// CloudFront Function (viewer request) of the site's default behaviour only: the web client's own routes
// (`/`, `/u/alice`, `/settings`: no dot in the last path segment) are answered with `/index.html`, and
// files (`/assets/app-3f9a2c1b.js`, `/config.json`) keep their path. `/api/*`, `/public/*` and
// `/private/*` are other behaviours and never reach this function, so the API's own 404s stay 404s.
function handler(event) {
  var request = event.request;
  var last = request.uri.substring(request.uri.lastIndexOf('/') + 1);
  if (last.indexOf('.') === -1) {
    request.uri = '/index.html';
  }
  return request;
}
