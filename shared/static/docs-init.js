// The page of GET /docs: Swagger UI on the dev server's own document.
window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true });
