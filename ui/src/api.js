// The UI's only source of data: the service's read-only /v1/ui JSON API, with the API key
// (if any) sent as a Bearer token. The key lives in sessionStorage, never in the page's URL.

const KEY_STORAGE = "autellix-api-key";

export function apiKey() {
  return sessionStorage.getItem(KEY_STORAGE) || "";
}

export function setApiKey(key) {
  if (key) sessionStorage.setItem(KEY_STORAGE, key);
  else sessionStorage.removeItem(KEY_STORAGE);
}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export async function getJSON(path, params = {}) {
  const query = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined) query.set(k, v);
  const url = query.toString() ? `${path}?${query}` : path;
  const headers = { Accept: "application/json" };
  const key = apiKey();
  if (key) headers.Authorization = `Bearer ${key}`;
  const response = await fetch(url, { headers, cache: "no-store" });
  if (!response.ok) {
    let message = `HTTP ${response.status}`;
    try {
      const body = await response.json();
      message = (body.error && body.error.message) || message;
    } catch (_) {
      // not JSON: keep the status line
    }
    throw new ApiError(response.status, message);
  }
  return response.json();
}

export const api = {
  programs: (includeFinished) =>
    getJSON("/v1/ui/programs", { include_finished: includeFinished ? "true" : "false" }),
  // The id goes in the query string: ids may hold any printable ASCII, "/" and ".." included.
  program: (programId, owner) => getJSON("/v1/ui/program", { program_id: programId, owner }),
  engines: () => getJSON("/v1/ui/engines"),
};
