"""The web console's files (static/: index.html, console.css and one script per view), shipped
as package data and served by serving/console_routes.py (docs/console.md)."""
