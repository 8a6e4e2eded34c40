fn main() {
    eprintln!("switchyard: command line being written");
    std::process::exit(1);
}
