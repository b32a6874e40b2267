from qa_app.cli import main

main()
