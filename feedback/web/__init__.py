"""Everything that speaks HTTP or Gradio: the chat page, its API, the reviewer page, the widget,
the request guards and the server that serves them all. It turns requests into calls on the
recorder (the one write gate) and reads through the review desk; it never opens a data file."""
