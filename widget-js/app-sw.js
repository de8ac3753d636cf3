// The coachee app's service worker (served at /c/{channel}/sw.js, scope /c/{channel}/): it keeps
// the app's shell (the page, the widget script, the manifest and icons) so the app opens without
// a network; messages typed offline wait in the widget's own queue until the connection is back.
// Everything else (the API, the WebSocket) goes to the network as usual.
const CACHE = "coach-app-v1";
const SHELL = ["./", "manifest.webmanifest", "icon-192.png", "icon-512.png", "/widget.js"];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

// The shell: the network first (a new version shows at once), the cache when offline.
function shell(request) {
  return fetch(request)
    .then((response) => {
      if (response.ok) {
        const copy = response.clone();
        caches.open(CACHE).then((c) => c.put(request, copy));
      }
      return response;
    })
    .catch(() => caches.match(request, { ignoreSearch: true }).then((hit) => hit || Response.error()));
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  const scope = new URL(self.registration.scope).pathname;
  if (request.mode === "navigate" || url.pathname === "/widget.js" || url.pathname.startsWith(scope)) {
    event.respondWith(shell(request));
  }
});
