module kubepki/benches/go-baseline

go 1.22
