# Shortcuts; ./dev does the work (and installs what is missing).
.PHONY: demo test bench lint
demo:
	./dev demo
test:
	./dev test
bench:
	./dev bench
lint:
	./dev lint
