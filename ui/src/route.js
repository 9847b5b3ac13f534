// Hash routes: #/programs, #/program?id=..&owner=.., #/engines. Ids are URL-encoded by
// URLSearchParams, so any printable ASCII id round-trips.

export function parseRoute(hash) {
  const raw = (hash || "").replace(/^#/, "") || "/programs";
  const [path, query = ""] = raw.split("?", 2);
  return { path, params: new URLSearchParams(query) };
}

export function programHref(programId, owner) {
  const params = new URLSearchParams({ id: programId });
  if (owner) params.set("owner", owner);
  return `#/program?${params}`;
}
