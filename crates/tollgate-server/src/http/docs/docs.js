// Renders the OpenAPI description at /openapi.json as a page: the operations by tag, each
// with its parameters, body and answers, then the schemas. Built with DOM calls only, so
// the page needs nothing beyond this origin's script and style.
"use strict";

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

// Text with `code` spans, as the descriptions write them.
function prose(text, tag = "p") {
  const node = el(tag, {});
  String(text || "").split(/(`[^`]*`)/).forEach((part) => {
    if (part.startsWith("`") && part.endsWith("`") && part.length > 1) node.append(el("code", {}, part.slice(1, -1)));
    else node.append(part);
  });
  return node;
}

function refName(ref) {
  return ref.slice(ref.lastIndexOf("/") + 1);
}

function typeOf(schema) {
  if (!schema) return "any";
  if (schema.$ref) return refName(schema.$ref);
  if (schema.oneOf) return "one of";
  if (schema.allOf) return "all of";
  const type = Array.isArray(schema.type) ? schema.type.join(" | ") : schema.type;
  if (type === "array") return "array of " + typeOf(schema.items);
  if (type === "object" && schema.additionalProperties && typeof schema.additionalProperties === "object") {
    return "map of " + typeOf(schema.additionalProperties);
  }
  return (type || "any") + (schema.format ? " (" + schema.format + ")" : "");
}

function typeNode(schema) {
  if (schema && schema.$ref) return el("a", { href: "#schema-" + refName(schema.$ref), class: "type" }, refName(schema.$ref));
  if (schema && schema.items && schema.items.$ref) {
    return el("span", { class: "type" }, "array of ", typeNode(schema.items));
  }
  return el("span", { class: "type" }, typeOf(schema));
}

// A schema as a nested list: its properties, its alternatives, its values.
function schemaTree(schema, depth = 0) {
  const list = el("ul", { class: "schema" });
  if (!schema || depth > 6) return list;
  for (const key of ["oneOf", "allOf", "anyOf"]) {
    for (const part of schema[key] || []) list.append(el("li", {}, typeNode(part), part.$ref ? null : schemaTree(part, depth + 1)));
  }
  if (schema.enum) list.append(el("li", { class: "muted" }, "one of: ", schema.enum.map((v) => el("code", {}, JSON.stringify(v) + " "))));
  const required = new Set(schema.required || []);
  for (const [name, prop] of Object.entries(schema.properties || {})) {
    const item = el("li", {}, el("code", {}, name), " ", typeNode(prop), required.has(name) ? el("span", { class: "req" }, " required") : null);
    if (prop.description) item.append(prose(prop.description, "div"));
    if (!prop.$ref && (prop.properties || prop.oneOf || prop.enum)) item.append(schemaTree(prop, depth + 1));
    if (prop.items && !prop.items.$ref && prop.items.properties) item.append(schemaTree(prop.items, depth + 1));
    list.append(item);
  }
  if (schema.additionalProperties === false) list.append(el("li", { class: "muted" }, "no other fields"));
  return list;
}

function content(body) {
  const out = [];
  for (const [type, media] of Object.entries((body && body.content) || {})) {
    out.push(el("div", {}, el("code", {}, type), " ", typeNode(media.schema)));
    if (media.schema && !media.schema.$ref && (media.schema.properties || media.schema.oneOf)) out.push(schemaTree(media.schema));
  }
  return out;
}

function operation(method, path, op) {
  const id = "op-" + (op.operationId || method + path);
  const head = el("h3", {}, el("span", { class: "method" }, method), el("span", { class: "path" }, path), el("span", { class: "summary" }, op.summary || ""));
  if (op.security && op.security.some((s) => Object.keys(s).length > 0)) {
    head.append(el("span", { class: "lock" }, "auth: " + op.security.map((s) => Object.keys(s).join("+") || "none").join(" or ")));
  }
  const section = el("section", { class: "op", id }, head);
  if (op.description) section.append(prose(op.description));
  if (op.parameters && op.parameters.length) {
    section.append(el("h4", {}, "Parameters"));
    section.append(el("table", {}, el("tr", {}, el("th", {}, "name"), el("th", {}, "in"), el("th", {}, "type"), el("th", {}, "")),
      op.parameters.map((p) => el("tr", {}, el("td", {}, el("code", {}, p.name), p.required ? el("span", { class: "req" }, " required") : null),
        el("td", {}, p.in), el("td", {}, typeNode(p.schema)), el("td", {}, prose(p.description || "", "span"))))));
  }
  if (op.requestBody) {
    section.append(el("h4", {}, "Body" + (op.requestBody.required ? "" : " (optional)")));
    if (op.requestBody.description) section.append(prose(op.requestBody.description));
    section.append(content(op.requestBody));
  }
  section.append(el("h4", {}, "Answers"));
  section.append(el("table", {}, Object.entries(op.responses || {}).map(([status, res]) =>
    el("tr", {}, el("td", {}, el("code", {}, status)), el("td", {}, prose(res.description || "", "div"), content(res),
      res.headers ? el("div", { class: "muted" }, "headers: ", Object.keys(res.headers).map((h) => el("code", {}, h + " "))) : null)))));
  return section;
}

function render(doc) {
  const main = document.getElementById("main");
  const nav = document.getElementById("nav");
  main.replaceChildren(el("h1", {}, (doc.info && doc.info.title) || "API", " ", el("small", { class: "muted" }, (doc.info && doc.info.version) || "")));
  if (doc.info && doc.info.description) main.append(prose(doc.info.description));
  main.append(el("p", {}, "OpenAPI " + doc.openapi + ": ", el("a", { href: "/openapi.json" }, "/openapi.json")));
  const byTag = new Map((doc.tags || []).map((t) => [t.name, { tag: t, ops: [] }]));
  for (const [path, item] of Object.entries(doc.paths || {})) {
    for (const method of ["get", "put", "post", "delete", "patch"]) {
      const op = item[method];
      if (!op) continue;
      const tag = (op.tags && op.tags[0]) || "other";
      if (!byTag.has(tag)) byTag.set(tag, { tag: { name: tag }, ops: [] });
      byTag.get(tag).ops.push([method, path, op]);
    }
  }
  for (const { tag, ops } of byTag.values()) {
    if (!ops.length) continue;
    nav.append(el("h2", {}, tag.name));
    main.append(el("h2", { class: "tag", id: "tag-" + tag.name }, tag.name));
    if (tag.description) main.append(prose(tag.description));
    for (const [method, path, op] of ops) {
      const section = operation(method, path, op);
      main.append(section);
      nav.append(el("a", { href: "#" + section.id }, method.toUpperCase() + " " + path));
    }
  }
  const schemas = (doc.components && doc.components.schemas) || {};
  nav.append(el("h2", {}, "schemas"));
  main.append(el("h2", { class: "tag", id: "schemas" }, "Schemas"));
  for (const [name, schema] of Object.entries(schemas)) {
    nav.append(el("a", { href: "#schema-" + name }, name));
    const section = el("section", { class: "op", id: "schema-" + name }, el("h3", {}, el("span", { class: "path" }, name), el("span", { class: "type" }, typeOf(schema))));
    if (schema.description) section.append(prose(schema.description.split("\n")[0]));
    section.append(schemaTree(schema));
    main.append(section);
  }
  if (location.hash) document.getElementById(location.hash.slice(1))?.scrollIntoView();
}

fetch("/openapi.json")
  .then((res) => (res.ok ? res.json() : Promise.reject(new Error("status " + res.status))))
  .then(render)
  .catch((e) => document.getElementById("main").append(el("p", { class: "err" }, "Could not read /openapi.json: " + e.message)));
