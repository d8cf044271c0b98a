"""`ssmusic serve`: the web demo (a small Starlette app and one static page). Nothing else in the
package imports it; its dependencies come with the `demo` extra (`pip install -e ".[demo]"`)."""
