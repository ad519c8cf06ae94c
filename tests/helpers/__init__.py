"""What several test modules share (test modules never import each other): fakes, the AppTest
factory, the Chromium + server helper."""
