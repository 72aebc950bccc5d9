// The API reference: the vendored Swagger UI over this server's own schema (no CDN, no online validator).
window.ui = SwaggerUIBundle({
  url: "/openapi.json", dom_id: "#swagger-ui", validatorUrl: null, deepLinking: true,
  layout: "BaseLayout", presets: [SwaggerUIBundle.presets.apis],
});
