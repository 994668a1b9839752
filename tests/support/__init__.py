"""Support code for the tests: the test Hub, the app as a process, page sessions, record factories, sample data."""
