fn main() {
    eprintln!("switchyard-app: being written");
    std::process::exit(1);
}
