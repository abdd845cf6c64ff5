# Shortcuts for dev.py (which needs only Python): make run | make test | make docs | make readme
.PHONY: run test docs readme
run:
	python3 dev.py run
test:
	python3 dev.py test
docs:
	python3 dev.py docs
readme:
	python3 tools/readme.py
