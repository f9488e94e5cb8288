module gkit

go 1.22
